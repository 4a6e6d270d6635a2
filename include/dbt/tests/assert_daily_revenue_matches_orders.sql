-- Singular test: the daily revenue mart adds up to the revenue of the order facts, day by day.
with facts as (
    select order_date, sum(case when is_revenue then amount else 0 end) as revenue
    from {{ ref('fct_orders') }}
    group by order_date
)
select d.order_date, d.revenue as mart_revenue, f.revenue as fact_revenue
from {{ ref('fct_daily_revenue') }} d
full outer join facts f on d.order_date = f.order_date
where d.order_date is null or f.order_date is null or abs(d.revenue - f.revenue) > 0.005
