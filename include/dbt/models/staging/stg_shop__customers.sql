select
    customer_id,
    name as customer_name,
    email,
    city,
    country,
    segment,
    created_at,
    updated_at
from {{ source('silver', 'customers') }}
