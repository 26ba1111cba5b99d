with source as (
    select * from {{ source('app', 'members') }}
),

renamed as (
    select
        member_id,
        lower(email) as email,
        lower(plan_code) as plan,
        home_station_id,
        signed_up_at,
        cast(signed_up_at as date) as signed_up_on
    from source
)

select * from renamed
