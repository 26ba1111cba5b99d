-- Order lines priced at the catalogue price and rolled up per order.
select
    items.order_id,
    count(*) as line_count,
    cast(sum(items.quantity) as number(38, 0)) as item_quantity,
    cast(sum(items.quantity * products.unit_price) as number(12, 2)) as order_total,
    cast(sum(case when products.category = 'food' then items.quantity * products.unit_price else 0 end)
        as number(12, 2)) as food_total
from {{ ref('stg_order_items') }} as items
inner join {{ ref('stg_products') }} as products
    on items.product_id = products.product_id
group by items.order_id
