select
    order_id,
    order_date,
    placed_at,
    customer_id,
    customer_sk,
    customer_segment,
    customer_country,
    customer_unknown,
    status,
    is_revenue,
    amount,
    case when is_revenue then amount else 0 end as revenue_amount,
    currency,
    item_count
from {{ ref('int_orders__customer_at_order') }}
