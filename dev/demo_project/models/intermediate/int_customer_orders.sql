-- Order history per customer; returned orders do not count towards lifetime value.
select
    orders.customer_id,
    min(orders.order_date) as first_order_date,
    max(orders.order_date) as most_recent_order_date,
    count(*) as number_of_orders,
    cast(sum(case when orders.status in ('returned', 'return_pending') then 0
        else coalesce(payments.amount_paid, 0) end) as number(14, 2)) as lifetime_value
from {{ ref('stg_orders') }} as orders
left join {{ ref('int_order_payments') }} as payments
    on orders.order_id = payments.order_id
group by orders.customer_id
