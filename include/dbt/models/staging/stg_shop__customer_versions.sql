-- Every version of every customer, from the SCD2 dimension: valid over [valid_from, valid_to),
-- valid_to null while the version is open.
select
    customer_sk,
    customer_id,
    name as customer_name,
    email,
    city,
    country,
    segment,
    valid_from,
    valid_to,
    is_current,
    is_deleted
from {{ source('gold', 'dim_customer') }}
