"""Plan → SQL statements for one dialect, built only from the dialect's named templates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlanon.plan.model import ColumnStep, KeyRef, ViewPlan
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.lookups import ViewLookups, lookup_table_statements, lookup_tables
from sqlanon.sql.memo import ColumnMemo
from sqlanon.sql.query import source_sql
from sqlanon.sql.shapes import Sql
from sqlanon.sql.shared import Names, Shared
from sqlanon.transforms import REGISTRY, LowerContext
from sqlanon.transforms.common import SAMPLE_TAG, canonical, keyed_hex

SOURCE_ALIAS = "_sqlanon_src"
KEYS_ALIAS = "_sqlanon_k"
UNIFORM_HEX_DIGITS = 13  # 52 bits of the keyed hash decide whether a unit is sampled


@dataclass(frozen=True)
class Statement:
    text: str  # no trailing semicolon


def key_row(
    keys: tuple[KeyRef, ...] | list[KeyRef],
    key_table: tuple[str, ...] | None,
    d: Dialect,
    names: Names | None = None,
    extra: tuple[tuple[Sql, str], ...] = (),
) -> tuple[list[Sql], dict[KeyRef, tuple[str, str]]]:
    """The one-row key subquery (none without keys): each key's pads, read at query time and
    required to exist — both pads of a key come from one row, so the inner pad's check covers
    the pair — plus `extra` (value, name) columns; and per key, the names of its (inner,
    outer) pad columns. `names` keeps those apart from the query's other columns."""
    if not keys:
        return [], {}
    assert key_table is not None
    table = d.relation(key_table)
    where = ".".join(key_table)
    aliases, key_names, versions = [], [], []
    columns: list[Sql] = []
    column_names: list[Sql] = []
    key_pads: dict[KeyRef, tuple[str, str]] = {}
    for i, key in enumerate(keys):
        alias = f"_sqlanon_k{i}"
        aliases.append(d.ident(alias))
        key_names.append(d.string(key.name))
        versions.append(d.number(key.version))
        missing = d.message(
            f"sqlanon: key '{key.name}' version {key.version} is missing from {where}"
        )
        pads = []
        for half in ("inner", "outer"):
            pad = d.qualified((alias, f"{half}_pad"))
            name = names.take(f"k{i}_{half}") if names else f"k{i}_{half}"
            columns.append(d.prim("require", pad, missing) if half == "inner" else pad)
            column_names.append(d.ident(name))
            pads.append(name)
        key_pads[key] = (pads[0], pads[1])
    for value, name in extra:
        columns.append(value)
        column_names.append(d.ident(name))
    query = d.statement("key_row", table, aliases, key_names, versions, columns, column_names)
    return [Sql(query.text)], key_pads  # atomic: the templates put it inside parentheses


def view_query(
    view: ViewPlan, d: Dialect, lookup_tables: bool = False, memo: ColumnMemo | None = None
) -> Sql:
    """The SELECT that computes the anonymized rows of a view (dialects/base:
    anonymized_select): the lookup relations it joins, the source columns it reads, the
    values its columns share, each output column under a comment naming its transform,
    k-anonymity's classes. With `lookup_tables` it joins the lookup tables the view's file
    deploys (sqlanon/sql/lookups.py); without, every lookup is written into the query, which
    then runs on a warehouse where nothing was deployed (tune, the demo's preview, dbt).
    `memo` (one per dialect) reuses columns lowered in earlier views (sqlanon/sql/memo.py)."""
    columns = view.emitted_columns
    sources = list(dict.fromkeys(col.sources[0] for col in columns))
    names = Names([*sources, *(col.output for col in columns)])
    key_query, key_pads = key_row(view.keys, view.key_table, d, names)
    inputs = [d.qualified((SOURCE_ALIAS, s)) for s in sources]
    inputs += [d.qualified((KEYS_ALIAS, pad)) for pair in key_pads.values() for pad in pair]
    # the column expressions read the input CTE's columns by name; shared values go to steps
    local_pads = {key: (d.ident(a), d.ident(b)) for key, (a, b) in key_pads.items()}
    shared = Shared(d, names)
    lookups = ViewLookups(d, view, names, SOURCE_ALIAS, lookup_tables)
    ctx = LowerContext(d, local_pads, shared, lookups)
    exprs: list[Sql] = []
    pads = tuple(local_pads.items())
    for col in columns:
        x = d.ident(col.sources[0])
        if memo is None:
            exprs.append(_commented_column(col, REGISTRY[col.transform].lower(ctx, x, col)))
        else:
            finish = partial(_commented_column, col)
            exprs.append(memo.lower(ctx, shared, lookups.joins, x, col, pads, finish))

    # the filters run on the source row itself, before any column is computed
    keys = qualifier(d, KEYS_ALIAS)
    filter_ctx = LowerContext(d, {k: (keys(i), keys(o)) for k, (i, o) in key_pads.items()})
    filters: list[Sql] = []
    if view.retention:
        column = d.qualified((SOURCE_ALIAS, view.retention.column))
        cutoff = d.prim(
            "date_minus_days", d.prim("current_date"), d.number(view.retention.max_age_days)
        )
        filters.append(d.prim("ge", column, cutoff))
    if view.sample:
        unit = d.qualified((SOURCE_ALIAS, view.sample.unit))
        unit_text = canonical(filter_ctx, unit, view.sample.unit_type)
        digest = keyed_hex(filter_ctx, unit_text, view.sample.key, SAMPLE_TAG)
        bound = format(view.sample.threshold, f"0{UNIFORM_HEX_DIGITS}x")
        filters.append(
            d.prim("hex_prefix_below", digest, d.string(bound), digits=UNIFORM_HEX_DIGITS)
        )

    kanon = view.k_anonymity
    suppress = kanon is not None and kanon.action == "suppress"
    qi = [d.ident(q) for q in kanon.quasi_identifiers] if suppress and kanon else []
    k = d.number(kanon.k if kanon else 0)
    targets = [j.target for j in lookups.joins]
    column_names = [d.ident(col.output) for col in columns]
    return d.statement(
        "anonymized_select",
        source_sql(view.source, d),
        d.items("column_list", inputs),
        [d.items("select_list", targets, [j.name for j in lookups.joins])] if targets else [],
        key_query,
        filters,
        [
            d.items("select_list", [v for v, _ in step], [n for _, n in step])
            for step in shared.steps
        ],
        d.items("select_list", exprs, column_names),
        d.items("column_list", column_names),
        qi,
        k,
        [commented(_pairs_comment(j.step), j.inline) for j in lookups.joins if j.inline],
        [j.relation for j in lookups.joins if j.inline],
        [j.relation for j in lookups.joins],
        [j.alias for j in lookups.joins],
        [j.on for j in lookups.joins],
    )


def _commented_column(col: ColumnStep, expr: Sql) -> Sql:
    return commented(column_comment(col), expr)


def _pairs_comment(col: ColumnStep) -> str:
    return f"{len(col.lookup or ())} {col.transform} pairs of {col.output}: {column_comment(col)}"


def column_comment(col: ColumnStep) -> str:
    """What produced an output column, for the reviewer: `mask(keep_last=4) of "phone"`."""
    params = [f"{k}={_param_text(v)}" for k, v in col.params if v is not None and k[:1] != "_"]
    text = f"{col.transform}({', '.join(params)})"
    if col.sources[0] != col.output:
        text += f" of {col.sources[0]}"
    return text


def _param_text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_param_text(x) for x in v) + "]"
    return str(v)


COMMENT_MAX = 100


def commented(comment: str, expr: Sql) -> Sql:
    """`expr` under a line comment, for a select list. The comment is made printable ASCII
    and cut short here, so no policy text can end the comment line and become SQL."""
    safe = comment
    if not (comment.isascii() and comment.isprintable()):
        safe = "".join(ch if " " <= ch <= "~" else "?" for ch in comment)
    if len(safe) > COMMENT_MAX:
        safe = safe[: COMMENT_MAX - 3] + "..."
    return Sql(f"-- {safe}\n{expr.text}", expr.atomic)


def view_statements(view: ViewPlan, d: Dialect, memo: ColumnMemo | None = None) -> list[Statement]:
    """The view's file: its schema (if missing), the view, its grants — runnable as is on a
    fresh warehouse once the key relation exists (docs/deploy.md)."""
    target = d.relation(view.target)
    out = schema_statements(view.target, d)
    for col, table in lookup_tables(view):
        out += [Statement(s) for s in lookup_table_statements(table, col, d)]
    query = view_query(view, d, lookup_tables=True, memo=memo)
    out.append(Statement(d.statement("create_view", target, query).text))
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
