-- Revenue per order date. Returned orders are excluded; grouping by the DATE column keeps the type
-- (date_trunc on a date returns a TIMESTAMP on the stand-in).
select
    order_date,
    count(*) as order_count,
    count(distinct customer_id) as customer_count,
    cast(sum(case when status in ('returned', 'return_pending') then 0 else amount_paid end) as number(14, 2))
        as revenue,
    cast(sum(case when status in ('returned', 'return_pending') then amount_paid else 0 end) as number(14, 2))
        as refunded_amount
from {{ ref('fct_orders') }}
group by order_date
