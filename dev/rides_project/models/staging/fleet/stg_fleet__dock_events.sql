with source as (
    select * from {{ source('fleet', 'dock_events') }}
),

renamed as (
    select
        event_id,
        station_id,
        bike_id,
        lower(event_type) as event_type,
        event_at,
        cast(event_at as date) as event_date,
        _synced_at as synced_at
    from source
)

select * from renamed
