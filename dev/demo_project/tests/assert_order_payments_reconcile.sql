-- Every order is paid in full: the payments add up to the catalogue value of its items (to the cent).
select order_id, order_total, amount_paid
from {{ ref('fct_orders') }}
where abs(order_total - amount_paid) > 0.005
