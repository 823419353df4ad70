"""A source's columns as the live warehouse has them: a relation's from its catalog; a query's
derived from the catalog of the relations it names (each column it reads checked there, the
output types inferred by sqlglot), so drift, apply, utility and tune treat both alike and a
misspelled column in a query is found before anything runs, with the policy's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from sqlanon.plan.model import Expression, Source, SourceQuery
from sqlanon.plan.query import parse_expression, parse_query, relation_parts
from sqlanon.sql import dialect as dialects


@dataclass(frozen=True)
class SourceProblem(Exception):
    """What is wrong with a source in the live catalog: `column` None for a missing relation."""

    relation: str
    column: str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.relation}{'.' + self.column if self.column else ''}: {self.detail}"


@dataclass(frozen=True)
class LiveSource:
    """A source as the catalog has it, read once."""

    columns: list[tuple[str, str]]  # (name, engine type); [] for a missing relation
    # a query's arithmetic some engine would round (see `_rounding`)
    rounding: list[str]


def source_columns(engine: Any, source: Source) -> list[tuple[str, str]]:
    """(name, engine type) of the source's columns; [] for a missing relation. A query
    source raises SourceProblem when a relation it names or a column it reads is missing."""
    return live_source(engine, source).columns


def live_source(engine: Any, source: Source) -> LiveSource:
    """The source's columns and, for a query, its arithmetic some engine would round by the
    catalog's types; raises SourceProblem as `source_columns` does."""
    if not isinstance(source, SourceQuery):
        return LiveSource(engine.columns(source), [])
    tree, live = _checked(engine, source)
    typed = _typed(engine, tree, live)
    if typed is None:  # an engine type sqlglot cannot read: the callers fall back to the plan
        return LiveSource([(c, "") for c in source.columns], [])
    columns = []
    for column, item in zip(source.columns, typed.expressions, strict=True):
        t = item.type
        unknown = t is None or t.is_type(exp.DataType.Type.UNKNOWN)
        columns.append((column, "" if unknown else t.sql(_sqlglot(engine))))
    return LiveSource(columns, _rounding(typed))


def _checked(engine: Any, q: SourceQuery) -> tuple[exp.Expr, dict[tuple[str, ...], dict[str, str]]]:
    """The query's tree with names folded, and the live columns of what it reads; raises
    SourceProblem for a relation or column that is not there."""
    live: dict[tuple[str, ...], dict[str, str]] = {}
    for rel in q.reads:
        cols = engine.columns(rel)
        if not cols:
            raise SourceProblem(".".join(rel), None, f"the relation is not there ({q.label})")
        live[tuple(p.lower() for p in rel)] = {n.lower(): t for n, t in cols}
    tree = parse_query(q.sql, q.dialect).copy()
    # names compared as the lowering writes them: case folded (sqlanon/sql/query.py)
    for ident in tree.find_all(exp.Identifier):
        ident.set("this", ident.name.lower())
        ident.set("quoted", False)
    by_alias: dict[str, tuple[str, ...]] = {}
    for table in tree.find_all(exp.Table):
        parts = relation_parts(table)
        by_alias[table.alias_or_name] = parts
    for col in tree.find_all(exp.Column):
        if col.table:
            found = by_alias.get(col.table)
            if found is None:
                raise SourceProblem(q.label, col.table, "names no relation of the query")
            if col.name not in live[found]:
                raise SourceProblem(
                    ".".join(found), col.name, "the query reads it; it is not there"
                )
        elif not any(col.name in cols for cols in live.values()):
            raise SourceProblem(q.label, col.name, "the query reads it; no relation has it")
    return tree, live


def _sqlglot(engine: Any) -> str:
    name = getattr(engine, "dialect", "duckdb")
    return dialects.get(name).sqlglot if name in dialects.available() else "duckdb"


def _typed(
    engine: Any, tree: exp.Expr, live: dict[tuple[str, ...], dict[str, str]]
) -> exp.Expr | None:
    """The tree with sqlglot's types, from the catalog's; None where it cannot read them."""
    dialect = _sqlglot(engine)
    nested: dict[str, Any] = {}
    for rel, cols in live.items():
        level = nested
        for part in rel[:-1]:
            level = level.setdefault(part, {})
        level[rel[-1]] = cols
    try:
        schema = MappingSchema(nested, dialect=dialect, normalize=False)
        typed: exp.Expr = annotate_types(
            qualify(tree.copy(), schema=schema, dialect=dialect), schema=schema
        )
    except Exception:
        return None
    return typed


# Decimal arithmetic is exact on every engine only while the exact result fits what each
# keeps: Spark rounds a result of more than 38 digits (DECIMAL(38, 9) + DECIMAL(38, 9) to 8
# decimals, a product of two to 6), BigQuery's NUMERIC keeps 9 decimals (docs/sources.md).
MAX_PRECISION, MAX_SCALE = 38, 9


def _digits(t: exp.DataType | None) -> tuple[int, int] | None:
    """(precision, scale) of an exact number type; None for other or unknown types."""
    if t is None:
        return None
    if t.is_type(*exp.DataType.INTEGER_TYPES):
        return (19, 0)
    if t.is_type(exp.DataType.Type.DECIMAL) and len(t.expressions) == 2:
        try:
            return int(t.expressions[0].name), int(t.expressions[1].name)
        except ValueError:
            return None
    return None


def expression_rounding(
    engine: Any, source_types: list[tuple[str, str]], expression: Expression
) -> list[str]:
    """The arithmetic of a measure's expression some engine would round, by the types of the
    source's columns (`LiveSource.columns`: the catalog's, or inferred through its query)."""
    columns = {n.lower(): t for n, t in source_types if t}
    tree = parse_expression(expression.sql, expression.dialect).copy()
    for ident in tree.find_all(exp.Identifier):
        ident.set("this", ident.name.lower())
        ident.set("quoted", False)
    for col in tree.find_all(exp.Column):
        col.set("table", exp.to_identifier("src"))
    query = exp.select(tree).from_("measured.src")
    typed = _typed(engine, query, {("measured", "src"): columns})
    return [] if typed is None else _rounding(typed)


def _rounding(typed: exp.Expr) -> list[str]:
    """Each + - * of two exact numbers whose exact result some engine would round, by
    sqlglot's types: the value could differ between warehouses. Unknown types (an
    unconstrained NUMERIC) and floats (IEEE arithmetic is the same everywhere) are not
    judged."""
    found = []
    for node in typed.find_all(exp.Mul, exp.Add, exp.Sub):
        left, right = _digits(node.left.type), _digits(node.right.type)
        if left is None or right is None or (left[1] == 0 and right[1] == 0):
            continue  # not two exact numbers, or integers (64-bit on every engine)
        (p1, s1), (p2, s2) = left, right
        if isinstance(node, exp.Mul):
            precision, scale = p1 + p2 + 1, s1 + s2
        else:
            scale = max(s1, s2)
            precision = scale + max(p1 - s1, p2 - s2) + 1
        if precision > MAX_PRECISION or scale > MAX_SCALE:
            found.append(
                f"{node.sql()}: DECIMAL({p1}, {s1}) and DECIMAL({p2}, {s2}) make a result of "
                f"{precision} digits, {scale} decimals, which Spark (over {MAX_PRECISION} "
                f"digits) or BigQuery (over {MAX_SCALE} decimals) would round"
            )
    return found
