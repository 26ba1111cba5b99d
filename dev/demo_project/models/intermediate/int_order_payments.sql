-- Payments rolled up per order. Sums are cast back to NUMBER: Snowflake keeps the scale, the stand-in
-- (DuckDB) would return DOUBLE.
select
    order_id,
    count(*) as payment_count,
    cast(sum(amount) as number(12, 2)) as amount_paid,
    cast(sum(case when payment_method = 'credit_card' then amount else 0 end) as number(12, 2))
        as credit_card_amount,
    cast(sum(case when payment_method = 'gift_card' then amount else 0 end) as number(12, 2))
        as gift_card_amount,
    min(paid_at) as first_paid_at
from {{ ref('stg_payments') }}
group by order_id
