with trips as (
    select * from {{ ref('fct_trips') }}
),

members as (
    select * from {{ ref('dim_members') }}
),

by_plan as (
    select
        members.plan,
        count(distinct trips.member_id) as riding_members,
        count(*) as trip_count,
        cast(sum(trips.charged_cents) as number(18, 0)) as revenue_cents
    from trips
    inner join members
        on trips.member_id = members.member_id
    group by members.plan
),

final as (
    select
        plan,
        riding_members,
        trip_count,
        {{ cents_to_currency('revenue_cents') }} as revenue
    from by_plan
)

select * from final
