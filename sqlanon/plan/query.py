"""Sources written as SQL: what a `source: {sql: …}` query and a measure expression may
contain, and what they read (docs/sources.md).

sqlanon lowers its own primitives by hand because the engines give the same spelling different
meanings; a user's query is transpiled by sqlglot instead, so it is held to a subset whose
meaning is the same on DuckDB, PostgreSQL, Snowflake, BigQuery and Spark: one SELECT of columns
and + - * arithmetic over inner and left joins, filtered by comparisons. Anything outside the
subset is refused at `validate` with the construct and the reason, not transpiled into a
different meaning. The plan keeps the query as text (no sqlglot nodes); the lowering parses it
again (sqlanon/sql/query.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

# the reference dialects a policy may write its SQL in (sqlglot's names)
DIALECTS = ("postgres", "duckdb", "snowflake", "bigquery", "spark")
DEFAULT_DIALECT = "postgres"

# nodes whose meaning is the same on every engine
_ALLOWED: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.From, exp.Join, exp.Table, exp.TableAlias, exp.Identifier, exp.Column,
    exp.Alias, exp.Where, exp.Literal, exp.Null, exp.Boolean, exp.Paren,
    exp.Add, exp.Sub, exp.Mul, exp.Neg,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between,
    exp.Case, exp.If, exp.Coalesce,
)  # fmt: skip
# refused with a reason a user can act on
_REASONS: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Div, "`/` divides integers differently (PostgreSQL truncates the quotient, the others "
     "return a fraction)"),
    (exp.Mod, "`%` takes the sign of different operands on different engines"),
    (exp.AggFunc, "an aggregate would change what one source row is (the privacy unit's rows "
     "are counted and bounded by sqlanon)"),
    (exp.Group, "GROUP BY would change what one source row is"),
    (exp.Window, "window functions depend on row order"),
    (exp.Order, "ORDER BY has no meaning in a source"),
    (exp.Limit, "LIMIT picks rows by an order the engines do not share"),
    (exp.Distinct, "DISTINCT would change what one source row is"),
    (exp.Subquery, "subqueries are not in the allowed subset"),
    (exp.Union, "set operations are not in the allowed subset"),
    (exp.With, "WITH is not in the allowed subset: write the joins in the FROM clause"),
    (exp.Star, "`*` would read columns the policy never named"),
    (exp.Like, "LIKE escapes differently per engine"),
    (exp.ILike, "ILIKE is not on every engine"),
    (exp.Cast, "casts round or format differently per engine (a DATE 'yyyy-mm-dd' literal is "
     "allowed)"),
    (exp.Func, "functions are not in the allowed subset (COALESCE and CASE are)"),
)  # fmt: skip


class QueryError(ValueError):
    """A query or expression outside the subset: the message names the construct."""


@dataclass(frozen=True)
class ParsedQuery:
    """What the policy and the plan need to know of a source query."""

    reads: tuple[tuple[str, ...], ...]  # the relations it names, sorted
    columns: tuple[str, ...]  # its output columns, in order


@dataclass(frozen=True)
class ParsedExpression:
    columns: tuple[str, ...]  # the source columns it reads, sorted
    is_column: bool  # the expression is one column, quoted: `"order total"`


def _date_literal(node: exp.Expr) -> bool:
    """`DATE '1995-01-01'`: parsed as a cast of a string literal to DATE."""
    return (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Literal)
        and node.this.is_string
        and node.to.is_type(exp.DataType.Type.DATE)
    )


def _check(root: exp.Expr) -> None:
    skip: set[int] = set()
    for node in root.walk():
        if id(node) in skip:
            continue
        if _date_literal(node):
            skip.update(id(n) for n in node.walk())
            continue
        if isinstance(node, exp.Literal) and not node.is_string and not node.this.isdigit():
            raise QueryError(
                f"the number {node.this} is not allowed: BigQuery reads a fraction as FLOAT64, "
                "the other engines as DECIMAL; write integers"
            )
        if isinstance(node, exp.Join):
            _check_join(node)
        if isinstance(node, exp.Table) and not (2 <= len(node.parts) <= 3):
            raise QueryError(
                f"the relation {node.sql()} must be named [catalog.]schema.table, as policy "
                "sources are"
            )
        if isinstance(node, exp.Column) and len(node.parts) > 2:
            raise QueryError(
                f"the column {node.sql()} is qualified by a path: qualify it by the table's alias"
            )
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            raise QueryError("`*` would read columns the policy never named")
        if isinstance(node, (exp.LT, exp.LTE, exp.GT, exp.GTE)) and any(
            isinstance(side, exp.Literal) and side.is_string for side in (node.left, node.right)
        ):
            raise QueryError(f"{node.sql()}: text ordering depends on each warehouse's collation")
        if isinstance(node, _ALLOWED):
            continue
        reason = next((why for kind, why in _REASONS if isinstance(node, kind)), None)
        raise QueryError(
            f"{node.sql()!r} is not allowed in a source: "
            + (reason or f"{node.key.upper()} is not in the allowed subset")
        )


def _check_join(join: exp.Join) -> None:
    side, kind = join.args.get("side") or "", join.args.get("kind") or ""
    method = join.args.get("method") or ""
    if method:  # NATURAL, ASOF, …
        raise QueryError(f"{str(method).upper()} JOIN is not allowed: inner and left joins are")
    allowed = (("", ""), ("", "INNER"), ("LEFT", ""), ("LEFT", "OUTER"))
    if (side.upper(), kind.upper()) not in allowed:
        raise QueryError(
            f"{' '.join(x for x in (side, kind) if x).upper()} JOIN is not allowed: "
            "inner and left joins are"
        )
    if join.args.get("using"):
        raise QueryError("JOIN … USING is not allowed: write JOIN … ON")
    if join.args.get("on") is None:
        raise QueryError("a join needs ON: a cross join is not allowed")


@lru_cache(maxsize=1024)
def _parse(sql: str, dialect: str) -> exp.Expr:
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        message = first.get("description", exc)
        raise QueryError(f"not valid {dialect} SQL{where}: {message}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise QueryError(f"a source is one SELECT statement, not {len(statements)}")
    return statements[0]  # type: ignore[return-value]


def parse_query(sql: str, dialect: str = DEFAULT_DIALECT) -> exp.Select:
    """The query's tree, checked; callers must copy it before changing it."""
    root = _parse(sql, dialect)
    if not isinstance(root, exp.Select):
        raise QueryError(
            f"a source is a SELECT, not {root.key.upper()} (no DDL, DML or set operations)"
        )
    _check(root)
    return root


def parse_expression(sql: str, dialect: str = DEFAULT_DIALECT) -> exp.Expr:
    """A measure's expression over the source's columns, checked."""
    root = _parse(f"SELECT {sql}", dialect)
    if not isinstance(root, exp.Select) or len(root.expressions) != 1 or root.args.get("from_"):
        raise QueryError("an expression is one value over the source's columns")
    expr: exp.Expr = root.expressions[0]
    if isinstance(expr, exp.Alias):
        raise QueryError("an expression takes no alias: the measure's name is its name")
    _check(expr)
    for col in expr.find_all(exp.Column):
        if col.table:
            raise QueryError(f"{col.sql()}: an expression reads the source's columns unqualified")
    return expr


def relation_parts(table: exp.Table) -> tuple[str, ...]:
    return tuple(p.name for p in table.parts)


def output_name(select_item: exp.Expr) -> str:
    if isinstance(select_item, exp.Alias | exp.Column):
        return select_item.alias_or_name
    raise QueryError(f"{select_item.sql()!r} needs a name: add `AS name`")


def describe_query(sql: str, dialect: str = DEFAULT_DIALECT) -> ParsedQuery:
    root = parse_query(sql, dialect)
    if not root.args.get("from_"):
        raise QueryError("a source query reads a relation: it needs FROM")
    columns = [output_name(s) for s in root.expressions]
    seen: dict[str, str] = {}
    for c in columns:
        if c.lower() in seen:
            raise QueryError(f"the query has two columns named {c!r}: give one an alias")
        seen[c.lower()] = c
    tables = list(root.find_all(exp.Table))
    if len(tables) > 1:
        for col in root.find_all(exp.Column):
            if not col.table:
                raise QueryError(
                    f"the column {col.sql()} is not qualified: in a query that joins, qualify "
                    "every column by its table's alias (the reviewer and the lineage see where "
                    "it comes from)"
                )
    reads = sorted({relation_parts(t) for t in tables})
    return ParsedQuery(tuple(reads), tuple(columns))


def query_lineage(sql: str, dialect: str) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """Each output column of a query → the (relation, column) pairs its value is computed
    from; the filters and join conditions are not a column's lineage."""
    root = parse_query(sql, dialect)
    by_alias = {t.alias_or_name: relation_parts(t) for t in root.find_all(exp.Table)}
    only = next(iter(by_alias.values())) if len(by_alias) == 1 else None
    out: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for item in root.expressions:
        pairs = set()
        for col in item.find_all(exp.Column):
            rel = by_alias.get(col.table) if col.table else only
            if rel is not None:
                pairs.add((rel, col.name))
        out[output_name(item)] = sorted(pairs)
    return out


def describe_expression(sql: str, dialect: str = DEFAULT_DIALECT) -> ParsedExpression:
    expr = parse_expression(sql, dialect)
    columns = tuple(sorted({c.name for c in expr.find_all(exp.Column)}))
    return ParsedExpression(columns, isinstance(expr, exp.Column))
