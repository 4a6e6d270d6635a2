{#- True when an order status counts as revenue (var `revenue_statuses`), portable SQL. -#}
{% macro is_revenue(status_column) -%}
    case when {{ status_column }} in (
        {%- for status in var('revenue_statuses') -%}
            '{{ status }}'{{ "," if not loop.last }}
        {%- endfor -%}
    ) then true else false end
{%- endmacro %}
