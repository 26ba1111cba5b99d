with source as (
    select * from {{ source('app', 'trip_charges') }}
),

renamed as (
    select
        charge_id,
        trip_id,
        lower(charge_type) as charge_type,
        amount_cents,
        {{ cents_to_currency('amount_cents') }} as amount,
        upper(currency) as currency_code,
        charged_at
    from source
)

select * from renamed
