-- The current version of every live customer.
select
    customer_sk,
    customer_id,
    customer_name,
    email,
    city,
    country,
    segment,
    valid_from as current_since
from {{ ref('stg_shop__customer_versions') }}
where is_current and not is_deleted
