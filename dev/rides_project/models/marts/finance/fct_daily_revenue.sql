-- Revenue per ride date. Grouping by the DATE column keeps its type (date_trunc on the stand-in would not).
with trips as (
    select * from {{ ref('fct_trips') }}
),

daily as (
    select
        ride_date,
        count(*) as trip_count,
        count(distinct member_id) as rider_count,
        cast(sum(charged_cents) as number(18, 0)) as revenue_cents
    from trips
    group by ride_date
),

final as (
    select
        ride_date,
        trip_count,
        rider_count,
        revenue_cents,
        {{ cents_to_currency('revenue_cents') }} as revenue
    from daily
)

select * from final
