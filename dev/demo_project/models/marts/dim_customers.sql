with latest_contact as (
    -- The checkout email of the customer's most recent order, which can differ from the account email.
    select customer_id, customer_email as last_checkout_email
    from {{ ref('stg_orders') }}
    qualify row_number() over (partition by customer_id order by order_date desc, order_id desc) = 1
)

select
    customers.customer_id,
    customers.first_name,
    customers.last_name,
    customers.full_name,
    customers.email,
    latest_contact.last_checkout_email,
    customers.created_at,
    history.first_order_date,
    history.most_recent_order_date,
    coalesce(history.number_of_orders, 0) as number_of_orders,
    coalesce(history.lifetime_value, 0) as lifetime_value
from {{ ref('stg_customers') }} as customers
left join {{ ref('int_customer_orders') }} as history
    on customers.customer_id = history.customer_id
left join latest_contact
    on customers.customer_id = latest_contact.customer_id
