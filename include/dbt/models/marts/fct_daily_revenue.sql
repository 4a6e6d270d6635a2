with orders as (
    select * from {{ ref('fct_orders') }}
)

select
    order_date,
    count(*) as orders,
    sum(case when is_revenue then 1 else 0 end) as revenue_orders,
    sum(case when status = 'cancelled' then 1 else 0 end) as cancelled_orders,
    count(distinct customer_id) as customers,
    sum(revenue_amount) as revenue,
    {{ safe_divide('sum(revenue_amount)', 'sum(case when is_revenue then 1 else 0 end)') }} as average_order_value
from orders
group by order_date
