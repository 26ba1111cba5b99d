with source as (
    select * from {{ source('fleet', 'bikes') }}
),

renamed as (
    select
        bike_id,
        upper(serial_number) as serial_number,
        lower(bike_type) as bike_type,
        firmware_version,
        commissioned_on
    from source
)

select * from renamed
