with source as (
    select * from {{ source('fleet', 'stations') }}
),

renamed as (
    select
        station_id,
        station_name,
        district,
        latitude,
        longitude,
        dock_count,
        opened_on
    from source
)

select * from renamed
