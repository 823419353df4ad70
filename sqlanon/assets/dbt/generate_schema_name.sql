{#- The views and releases land in exactly the schemas the policy names (where its grants and
    the analysts' access point), not in dbt's default `<target schema>_<custom schema>`.
    dbt uses this macro only from the root project: see docs/dbt.md when installing the
    generated project as a package. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- else -%}
    {{ custom_schema_name }}
  {%- endif -%}
{%- endmacro %}
