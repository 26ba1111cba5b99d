-- False starts (shorter than var('min_trip_seconds')) are never billed.
with trips as (
    select * from {{ ref('int_trips__classified') }}
),

charges as (
    select * from {{ ref('int_trip_charges__per_trip') }}
)

select trips.trip_id, trips.duration_seconds, charges.charged_cents
from trips
inner join charges
    on trips.trip_id = charges.trip_id
where not trips.is_real_trip
