-- Finance and core agree to the cent: the daily revenue mart adds up to what the trips were charged.
with finance as (
    select coalesce(sum(revenue_cents), 0) as revenue_cents from {{ ref('fct_daily_revenue') }}
),

core as (
    select coalesce(sum(charged_cents), 0) as charged_cents from {{ ref('fct_trips') }}
)

select finance.revenue_cents, core.charged_cents
from finance
cross join core
where finance.revenue_cents <> core.charged_cents
