"""Plan → SQL statements for one dialect, built only from the dialect's named templates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlanon.plan.model import KeyRef, ViewPlan
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.shapes import Sql
from sqlanon.transforms import REGISTRY, LowerContext
from sqlanon.transforms.common import SAMPLE_TAG, canonical, keyed_hex

SOURCE_ALIAS = "_sqlanon_src"
KEYS_ALIAS = "_sqlanon_k"
UNIFORM_HEX_DIGITS = 13  # 52 bits of the keyed hash decide whether a unit is sampled


@dataclass(frozen=True)
class Statement:
    text: str  # no trailing semicolon


def key_columns(
    keys: tuple[KeyRef, ...] | list[KeyRef], key_table: tuple[str, ...] | None, d: Dialect
) -> tuple[list[Sql], list[Sql], dict[KeyRef, tuple[Sql, Sql]]]:
    """The one-row key subquery's columns (each key's pads, read at query time and required
    to exist) and, per key, how the query refers to its pads."""
    key_values: list[Sql] = []
    key_names: list[Sql] = []
    key_pads: dict[KeyRef, tuple[Sql, Sql]] = {}
    if not keys:
        return key_values, key_names, key_pads
    assert key_table is not None
    table = d.relation(key_table)
    where = ".".join(key_table)
    for i, key in enumerate(keys):
        missing = d.string(
            f"sqlanon: key '{key.name}' version {key.version} is missing from {where}"
        )
        pads = []
        for half in ("inner", "outer"):
            value = d.prim(
                "key_value",
                table,
                d.ident(f"{half}_pad"),
                d.string(key.name),
                d.number(key.version),
            )
            key_values.append(d.prim("require", value, missing))
            key_names.append(d.ident(f"k{i}_{half}"))
            pads.append(d.qualified((KEYS_ALIAS, f"k{i}_{half}")))
        key_pads[key] = (pads[0], pads[1])
    return key_values, key_names, key_pads


def view_query(view: ViewPlan, d: Dialect) -> Sql:
    """The SELECT that computes the anonymized rows of a view."""
    key_values, key_names, key_pads = key_columns(view.keys, view.key_table, d)
    ctx = LowerContext(d, key_pads)

    exprs: list[Sql] = []
    names: list[Sql] = []
    for col in view.emitted_columns:
        x = d.qualified((SOURCE_ALIAS, col.sources[0]))
        exprs.append(REGISTRY[col.transform].lower(ctx, x, col))
        names.append(d.ident(col.output))

    filters: list[Sql] = []
    if view.retention:
        column = d.qualified((SOURCE_ALIAS, view.retention.column))
        cutoff = d.prim(
            "date_minus_days", d.prim("current_date"), d.number(view.retention.max_age_days)
        )
        filters.append(d.prim("ge", column, cutoff))
    if view.sample:
        unit = d.qualified((SOURCE_ALIAS, view.sample.unit))
        unit_text = canonical(ctx, unit, view.sample.unit_type)
        digest = keyed_hex(ctx, unit_text, view.sample.key, SAMPLE_TAG)
        bound = format(view.sample.threshold, f"0{UNIFORM_HEX_DIGITS}x")
        filters.append(
            d.prim("hex_prefix_below", digest, d.string(bound), digits=UNIFORM_HEX_DIGITS)
        )

    kanon = view.k_anonymity
    suppress = kanon is not None and kanon.action == "suppress"
    qi = [d.ident(q) for q in kanon.quasi_identifiers] if suppress and kanon else []
    k = d.number(kanon.k if kanon else 0)
    return d.statement(
        "anonymized_select",
        d.relation(view.source),
        key_values,
        key_names,
        exprs,
        names,
        filters,
        qi,
        k,
    )


def view_statements(view: ViewPlan, d: Dialect) -> list[Statement]:
    """The view's file: its schema (if missing), the view, its grants — runnable as is on a
    fresh warehouse once the key relation exists (docs/deploy.md)."""
    target = d.relation(view.target)
    out = schema_statements(view.target, d)
    out.append(Statement(d.statement("create_view", target, view_query(view, d)).text))
    return out + grant_statements(view.target, view.grants, d, "view")


def schema_statements(relation: tuple[str, ...], d: Dialect) -> list[Statement]:
    """CREATE SCHEMA IF NOT EXISTS for the schema a relation lives in (none for a bare name):
    every compiled file creates what it needs, so the files run on a fresh warehouse."""
    if len(relation) < 2:
        return []
    return [Statement(d.statement("create_schema", d.relation(relation[:-1])).text)]


def grant_statements(
    target: tuple[str, ...], roles: tuple[str, ...], d: Dialect, kind: str
) -> list[Statement]:
    """SELECT on the object and USAGE on its schema (without which SELECT is not enough),
    per role; nothing where the dialect has no GRANT."""
    if not d.features.grants:
        return []
    out = []
    for role in roles:
        if len(target) > 1:
            schema = d.relation(target[:-1])
            out.append(Statement(d.statement("grant_usage", schema, d.ident(role)).text))
        grant = d.statement("grant_select", d.relation(target), d.ident(role), kind=kind)
        out.append(Statement(grant.text))
    return out


def key_table_statements(table: tuple[str, ...], d: Dialect) -> list[Statement]:
    out = schema_statements(table, d)
    out.append(Statement(d.statement("create_key_table", d.relation(table)).text))
    return out


def qualifier(d: Dialect, alias: str) -> Callable[[str], Sql]:
    """`alias.name` for the columns of one relation of a query."""

    def column(name: str) -> Sql:
        return d.qualified((alias, name))

    return column
