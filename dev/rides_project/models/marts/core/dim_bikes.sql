with bikes as (
    select * from {{ ref('stg_fleet__bikes') }}
),

trips as (
    select * from {{ ref('fct_trips') }}
),

bike_usage as (
    select
        bike_id,
        count(*) as trip_count,
        cast(sum(distance_meters) / 1000 as number(12, 1)) as distance_km
    from trips
    group by bike_id
),

final as (
    select
        bikes.bike_id,
        bikes.serial_number,
        bikes.bike_type,
        bikes.commissioned_on,
        coalesce(bike_usage.trip_count, 0) as trip_count,
        coalesce(bike_usage.distance_km, 0) as distance_km
    from bikes
    left join bike_usage
        on bikes.bike_id = bike_usage.bike_id
)

select * from final
