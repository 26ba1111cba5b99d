-- Incremental: each run replaces, by order_id, the rows of the latest load and anything newer.
-- Two settings keep this valid on Snowflake and working on the embedded stand-in (fakesnow):
--   tmp_relation_type='transient': dbt's temporary view fails there ("TEMPORARY table names can *only* use
--     the temp catalog");
--   delete+insert rather than merge: dbt's MERGE inserts unqualified source columns, which the stand-in's
--     MERGE emulation rejects as ambiguous ("Ambiguous reference to column name").
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        tmp_relation_type='transient',
    )
}}

with orders as (
    select * from {{ ref('stg_orders') }}
    {% if is_incremental() %}
    where loaded_at >= (select max(loaded_at) from {{ this }})
    {% endif %}
)

select
    orders.order_id,
    orders.customer_id,
    orders.customer_email,
    orders.order_date,
    orders.status,
    coalesce(items.line_count, 0) as line_count,
    coalesce(items.item_quantity, 0) as item_quantity,
    coalesce(items.order_total, 0) as order_total,
    coalesce(payments.payment_count, 0) as payment_count,
    coalesce(payments.amount_paid, 0) as amount_paid,
    coalesce(payments.credit_card_amount, 0) as credit_card_amount,
    coalesce(payments.gift_card_amount, 0) as gift_card_amount,
    orders.loaded_at
from orders
left join {{ ref('int_order_items') }} as items
    on orders.order_id = items.order_id
left join {{ ref('int_order_payments') }} as payments
    on orders.order_id = payments.order_id
