-- Charges rolled up per trip. Sums stay in cents (exact integers) and are converted once at the end.
with charges as (
    select * from {{ ref('stg_app__trip_charges') }}
),

per_trip as (
    select
        trip_id,
        count(*) as charge_count,
        cast(sum(amount_cents) as number(18, 0)) as charged_cents,
        cast(sum(case when charge_type = 'unlock' then amount_cents else 0 end) as number(18, 0)) as unlock_cents,
        cast(sum(case when charge_type = 'out_of_zone' then amount_cents else 0 end) as number(18, 0))
            as out_of_zone_cents
    from charges
    where trip_id is not null
    group by trip_id
),

final as (
    select
        trip_id,
        charge_count,
        charged_cents,
        {{ cents_to_currency('charged_cents') }} as amount_charged,
        {{ cents_to_currency('unlock_cents') }} as unlock_amount,
        {{ cents_to_currency('out_of_zone_cents') }} as out_of_zone_amount
    from per_trip
)

select * from final
