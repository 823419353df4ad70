{#- The epoch a release model is refreshed for (docs/dp.md): `dbt build --vars 'sqlanon_epoch: 7'`.
    Each refresh spends the release's epsilon; a missing or malformed epoch stops the run
    rather than defaulting. While dbt only parses (execute is false) no epoch is needed. -#}
{% macro sqlanon_epoch() -%}
  {%- set epoch = var('sqlanon_epoch', none) -%}
  {%- if not execute -%}
    0
  {%- elif epoch is none or not (epoch | string).isdigit() -%}
    {{ exceptions.raise_compiler_error("sqlanon: set the epoch of this refresh: dbt build --vars 'sqlanon_epoch: N' with N a whole number (docs/dp.md)") }}
  {%- else -%}
    {{ epoch | int }}
  {%- endif -%}
{%- endmacro %}
