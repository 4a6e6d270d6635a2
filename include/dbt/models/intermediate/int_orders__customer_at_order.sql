-- Each order with the customer version that was valid when it was placed (a point-in-time join
-- on the SCD2 dimension). An order placed before its customer's first version (the customer
-- was created later the same day) takes the first version and says so; an order whose
-- customer has no version at all (deleted before the lakehouse's first snapshot) gets the
-- unknown member, surrogate key -1 (Kimball), instead of being dropped.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

versions as (
    select * from {{ ref('stg_shop__customer_versions') }}
),

at_order as (
    select o.order_id, v.customer_sk, v.segment, v.country
    from orders as o
    inner join versions as v
        on o.customer_id = v.customer_id
        and o.placed_at >= v.valid_from
        and (v.valid_to is null or o.placed_at < v.valid_to)
),

first_version as (
    select customer_id, customer_sk, segment, country
    from (
        select
            customer_id, customer_sk, segment, country,
            row_number() over (partition by customer_id order by valid_from) as version_number
        from versions
    ) as numbered
    where version_number = 1
)

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.placed_at,
    o.status,
    o.is_revenue,
    o.amount,
    o.currency,
    o.item_count,
    coalesce(a.customer_sk, f.customer_sk, -1) as customer_sk,
    coalesce(a.segment, f.segment, 'unknown') as customer_segment,
    coalesce(a.country, f.country, 'unknown') as customer_country,
    a.customer_sk is null and f.customer_sk is not null as customer_version_assumed,
    f.customer_sk is null as customer_unknown
from orders as o
left join at_order as a on o.order_id = a.order_id
left join first_version as f on o.customer_id = f.customer_id
