{#- In the spirit of dbt_utils.unique_combination_of_columns: no two rows share the combination. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with rows_under_test as (
    select {{ combination_of_columns | join(', ') }}
    from {{ model }}
),

duplicated as (
    select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
    from rows_under_test
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
)

select * from duplicated

{% endtest %}
