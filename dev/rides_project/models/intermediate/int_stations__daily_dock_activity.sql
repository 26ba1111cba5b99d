-- Undocks and docks per station and day, from what the stations report (false starts included).
with dock_events as (
    select * from {{ ref('stg_fleet__dock_events') }}
),

daily as (
    select
        station_id,
        event_date as activity_date,
        count_if(event_type = 'undock') as undocks,
        count_if(event_type = 'dock') as docks
    from dock_events
    group by station_id, event_date
)

select * from daily
