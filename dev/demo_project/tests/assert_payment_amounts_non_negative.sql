-- Refunds are modelled as order statuses, never as negative payments.
select order_id, amount_paid
from {{ ref('int_order_payments') }}
where amount_paid < 0
