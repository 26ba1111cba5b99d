with members as (
    select * from {{ ref('stg_app__members') }}
),

trips as (
    select * from {{ ref('fct_trips') }}
),

riding as (
    select
        member_id,
        count(*) as trip_count,
        min(started_at) as first_trip_at,
        max(started_at) as last_trip_at,
        cast(sum(charged_cents) as number(18, 0)) as lifetime_cents
    from trips
    group by member_id
),

final as (
    select
        members.member_id,
        members.email,
        members.plan,
        members.home_station_id,
        members.signed_up_on,
        riding.first_trip_at,
        riding.last_trip_at,
        coalesce(riding.trip_count, 0) as trip_count,
        {{ cents_to_currency('coalesce(riding.lifetime_cents, 0)') }} as lifetime_spend,
        coalesce(riding.trip_count, 0) > 0 as is_active
    from members
    left join riding
        on members.member_id = riding.member_id
)

select * from final
