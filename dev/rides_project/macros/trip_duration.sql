{#- Trip length in whole seconds, and whether it counts as a trip at all (var('min_trip_seconds')). -#}
{% macro trip_duration_seconds(started_at, ended_at) -%}
    datediff('second', {{ started_at }}, {{ ended_at }})
{%- endmacro %}

{% macro is_real_trip(started_at, ended_at) -%}
    ({{ trip_duration_seconds(started_at, ended_at) }} >= {{ var('min_trip_seconds') | int }})
{%- endmacro %}
