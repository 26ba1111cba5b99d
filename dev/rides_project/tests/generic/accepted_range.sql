{#- In the spirit of dbt_expectations/dbt_utils accepted_range: values lie within [min_value, max_value].
    Either bound may be left out; inclusive=false makes both bounds strict. NULLs are not judged here. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

{%- if min_value is none and max_value is none -%}
    {{ exceptions.raise_compiler_error(
        "accepted_range on " ~ model ~ "." ~ column_name ~ " needs min_value, max_value or both") }}
{%- endif -%}

with rows_under_test as (
    select {{ column_name }} as value_under_test
    from {{ model }}
    where {{ column_name }} is not null
)

select *
from rows_under_test
where
    {%- if min_value is not none %}
    value_under_test {{ '<' if inclusive else '<=' }} {{ min_value }}
    {%- endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %}
    value_under_test {{ '>' if inclusive else '>=' }} {{ max_value }}
    {%- endif %}

{% endtest %}
