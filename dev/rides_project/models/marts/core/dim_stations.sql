with stations as (
    select * from {{ ref('stg_fleet__stations') }}
),

activity as (
    select * from {{ ref('int_stations__daily_dock_activity') }}
),

trips as (
    select * from {{ ref('fct_trips') }}
),

reported as (
    select
        station_id,
        cast(sum(undocks) as number(18, 0)) as reported_undocks,
        cast(sum(docks) as number(18, 0)) as reported_docks,
        max(activity_date) as last_active_on
    from activity
    group by station_id
),

departures as (
    select start_station_id as station_id, count(*) as trips_started
    from trips
    group by start_station_id
),

final as (
    select
        stations.station_id,
        stations.station_name,
        stations.district,
        stations.latitude,
        stations.longitude,
        stations.dock_count,
        stations.opened_on,
        coalesce(departures.trips_started, 0) as trips_started,
        coalesce(reported.reported_undocks, 0) as reported_undocks,
        coalesce(reported.reported_docks, 0) as reported_docks,
        reported.last_active_on
    from stations
    left join departures
        on stations.station_id = departures.station_id
    left join reported
        on stations.station_id = reported.station_id
)

select * from final
