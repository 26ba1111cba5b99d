{#- Minor units (cents) to currency with var('currency_scale') decimals. The division is left to the
    warehouse on purpose, without a cast of the input: a column that is not numeric any more is an error,
    not a silent conversion. -#}
{% macro cents_to_currency(column_name, scale=none) -%}
    {%- set scale = var('currency_scale') if scale is none else scale -%}
    cast({{ column_name }} / {{ 10 ** (scale | int) }} as number(18, {{ scale | int }}))
{%- endmacro %}
