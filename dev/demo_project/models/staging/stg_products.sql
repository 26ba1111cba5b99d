select
    product_id,
    name as product_name,
    category,
    price as unit_price
from {{ source('raw', 'products') }}
