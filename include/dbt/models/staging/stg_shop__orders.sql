select
    order_id,
    customer_id,
    order_date,
    placed_at,
    lower(status) as status,
    {{ dbt.cast('amount', api.Column.translate_type('decimal(12,2)')) }} as amount,
    currency,
    {{ dbt.cast('items', api.Column.translate_type('integer')) }} as item_count,
    {{ is_revenue('lower(status)') }} as is_revenue
from {{ source('silver', 'orders') }}
