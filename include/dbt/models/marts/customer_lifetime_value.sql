-- Lifetime value per customer over revenue orders, with the customer's current segment when live.
with revenue_orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue
),

per_customer as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as orders,
        sum(amount) as lifetime_revenue
    from revenue_orders
    group by customer_id
)

select
    p.customer_id,
    c.segment as current_segment,
    c.customer_id is not null as is_live,
    p.first_order_date,
    p.last_order_date,
    {{ dbt.datediff('p.first_order_date', 'p.last_order_date', 'day') }} as tenure_days,
    p.orders,
    p.lifetime_revenue,
    {{ safe_divide('p.lifetime_revenue', 'p.orders') }} as average_order_value
from per_customer as p
left join {{ ref('dim_customers_current') }} as c on p.customer_id = c.customer_id
