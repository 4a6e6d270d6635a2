{#- numerator / denominator, null when the denominator is 0 or null (no engine-specific errors). -#}
{% macro safe_divide(numerator, denominator) -%}
    case when {{ denominator }} = 0 then null else {{ numerator }} / {{ denominator }} end
{%- endmacro %}
