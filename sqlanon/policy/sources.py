"""A table's or release's `source`: a relation's name, or `{sql: "SELECT …", dialect: …}`
checked against the subset every engine gives one meaning (sqlanon/plan/query.py); and a
measure's input, a column or an expression over the source's columns."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlanon.plan.model import Expression, Source, SourceQuery
from sqlanon.plan.query import (
    DEFAULT_DIALECT,
    DIALECTS,
    QueryError,
    describe_expression,
    describe_query,
)
from sqlanon.policy.check import Checker, relation_name
from sqlanon.policy.diagnostics import Location, did_you_mean, one_of
from sqlanon.policy.yamltree import YMap, YNode

ALLOWED_SQL = "docs/sources.md#the-sql-a-source-may-use"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def read_source(chk: Checker, node: YNode | None, what: str) -> Source | None:
    if not isinstance(node, YMap):
        return relation_name(chk, node, what)
    m = chk.mapping(node, what, ("dialect",), required=("sql",))
    if m is None or m.get("sql") is None:
        return None
    sql = chk.string(m.get("sql"), f"the query of {what}", multiline=True)
    dialect = DEFAULT_DIALECT
    if m.get("dialect") is not None:
        dialect = chk.enum(m.get("dialect"), f"the dialect of {what}", DIALECTS) or ""
    if sql is None or not dialect:
        return None
    text = sql.strip()
    try:
        parsed = describe_query(text, dialect)
    except QueryError as exc:
        chk.error(
            m.value_loc("sql"),
            f"the query of {what}: {exc}",
            expected=f"one SELECT in the allowed subset ({ALLOWED_SQL})",
        )
        return None
    return SourceQuery(text, dialect, parsed.reads, parsed.columns)


def source_dialect(source: Source | None) -> str:
    """The dialect a release's measure expressions are read in: its query's, or the default."""
    return source.dialect if isinstance(source, SourceQuery) else DEFAULT_DIALECT


def read_measure_input(
    chk: Checker, text: str, loc: Location | None, dialect: str, what: str
) -> str | Expression | None:
    """A plain name is a column (as it always was); anything else an expression."""
    if _NAME.fullmatch(text):
        return text
    try:
        parsed = describe_expression(text, dialect)
    except QueryError as exc:
        chk.error(
            loc,
            f"the column of {what} is neither a column name nor an allowed expression: {exc}",
            expected=f"a column, or + - * over columns and integers ({ALLOWED_SQL})",
            hint="a column name with spaces or symbols is written in double quotes",
        )
        return None
    if len(parsed.columns) == 1 and parsed.is_column:
        return parsed.columns[0]
    return Expression(text, dialect, parsed.columns)


def check_reads(
    chk: Checker,
    source: SourceQuery,
    reads: Iterable[tuple[str, Location]],
    what: str,
) -> None:
    """Every column the policy reads from a query source is one of the query's columns:
    known at `validate`, unlike a relation's (checked against the catalog by drift)."""
    have = {c.lower() for c in source.columns}
    for column, loc in reads:
        if column.lower() not in have:
            chk.error(
                loc,
                f"{what} reads column {column!r}, which its source query does not select",
                expected=one_of(list(source.columns)),
                hint=did_you_mean(column, source.columns),
            )
