select
    payment_id,
    order_id,
    payment_method,
    amount,
    created_at as paid_at
from {{ source('raw', 'payments') }}
