{#- In the spirit of dbt_utils.expression_is_true: every row satisfies a boolean SQL expression. -#}
{% test expression_is_true(model, expression, where_clause=none) %}

with rows_under_test as (
    select * from {{ model }}
    {% if where_clause %}where {{ where_clause }}{% endif %}
)

select *
from rows_under_test
where not ({{ expression }})

{% endtest %}
