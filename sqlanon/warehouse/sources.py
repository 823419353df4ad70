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

from sqlanon.plan.model import Source, SourceQuery
from sqlanon.plan.query import parse_query, relation_parts
from sqlanon.sql import dialect as dialects


@dataclass(frozen=True)
class SourceProblem(Exception):
    """What is wrong with a source in the live catalog: `column` None for a missing relation."""

    relation: str
    column: str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.relation}{'.' + self.column if self.column else ''}: {self.detail}"


def source_columns(engine: Any, source: Source) -> list[tuple[str, str]]:
    """(name, engine type) of the source's columns; [] for a missing relation. A query
    source raises SourceProblem when a relation it names or a column it reads is missing."""
    if not isinstance(source, SourceQuery):
        columns: list[tuple[str, str]] = engine.columns(source)
        return columns
    return _query_columns(engine, source)


def _query_columns(engine: Any, q: SourceQuery) -> list[tuple[str, str]]:
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
    return list(zip(q.columns, _types(engine, tree, live), strict=True))


def _types(engine: Any, tree: exp.Expr, live: dict[tuple[str, ...], dict[str, str]]) -> list[str]:
    """The engine type of each output column; "" where sqlglot cannot tell."""
    name = getattr(engine, "dialect", "duckdb")
    dialect = dialects.get(name).sqlglot if name in dialects.available() else "duckdb"
    nested: dict[str, Any] = {}
    for rel, cols in live.items():
        level = nested
        for part in rel[:-1]:
            level = level.setdefault(part, {})
        level[rel[-1]] = cols
    try:
        schema = MappingSchema(nested, dialect=dialect, normalize=False)
        typed = annotate_types(qualify(tree.copy(), schema=schema, dialect=dialect), schema=schema)
    except Exception:  # an engine type sqlglot cannot read: the callers fall back to the plan
        return ["" for _ in tree.expressions]
    out = []
    for s in typed.expressions:
        t = s.type
        unknown = t is None or t.is_type(exp.DataType.Type.UNKNOWN)
        out.append("" if unknown else t.sql(dialect))
    return out
