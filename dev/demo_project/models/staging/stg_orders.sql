select
    order_id,
    customer_id,
    order_date,
    lower(status) as status,
    customer_email,
    _loaded_at as loaded_at
from {{ source('raw', 'orders') }}
