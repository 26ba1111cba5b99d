-- Every landed trip with what the business cares about: is it a real trip (not a false start shorter than
-- var('min_trip_seconds')), and did it end where it started.
with trips as (
    select * from {{ ref('stg_app__trips') }}
),

classified as (
    select
        trip_id,
        member_id,
        bike_id,
        start_station_id,
        end_station_id,
        started_at,
        ended_at,
        ride_date,
        duration_seconds,
        distance_meters,
        {{ is_real_trip('started_at', 'ended_at') }} as is_real_trip,
        start_station_id = end_station_id as is_round_trip,
        synced_at
    from trips
)

select * from classified
