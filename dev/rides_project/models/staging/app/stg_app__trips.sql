with source as (
    select * from {{ source('app', 'trips') }}
),

renamed as (
    select
        trip_id,
        member_id,
        bike_id,
        start_station_id,
        end_station_id,
        started_at,
        ended_at,
        cast(started_at as date) as ride_date,
        {{ trip_duration_seconds('started_at', 'ended_at') }} as duration_seconds,
        distance_m as distance_meters,
        _synced_at as synced_at
    from source
)

select * from renamed
