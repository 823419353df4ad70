"""Lowering a query source or a measure expression to one dialect: sqlglot transpiles the
checked subset (sqlanon/plan/query.py), names are written as the rest of the SQL writes them.

Every identifier of the user's SQL means what the same name means elsewhere in the policy
(`Dialect.ident`: a regular name folded as the warehouse folds it, then quoted), so the view's
`"C_MKTSEGMENT"` on Snowflake reads the query's column of that name; relations are written by
`Dialect.relation` (BigQuery's one-identifier paths included).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from sqlanon.plan.model import Expression, Source, SourceQuery
from sqlanon.plan.query import parse_expression, parse_query, relation_parts
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.shapes import Sql

_PLACEHOLDER = "_sqlanon_relation_{}_"


def _generate(tree: exp.Expr, d: Dialect, pretty: bool) -> str:
    return tree.sql(
        dialect=d.sqlglot,
        pretty=pretty,
        unsupported_level=ErrorLevel.RAISE,
    )


def _names(tree: exp.Expr, d: Dialect) -> None:
    """Each identifier as the policy's names are written (folded, quoted)."""
    for ident in list(tree.find_all(exp.Identifier)):
        ident.set("this", d.stored_name(ident.name))
        ident.set("quoted", True)


def query_sql(q: SourceQuery, d: Dialect) -> str:
    """The query in dialect `d`, one clause per line."""
    tree = parse_query(q.sql, q.dialect).copy()
    relations: list[tuple[str, ...]] = []
    for table in list(tree.find_all(exp.Table)):
        parts = relation_parts(table)
        # a table named without an alias keeps its name as the alias, so `orders.o_orderkey`
        # still resolves where the relation is written as one path (BigQuery)
        alias = table.alias or parts[-1]
        placeholder = exp.Table(this=exp.to_identifier(_PLACEHOLDER.format(len(relations))))
        placeholder.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        relations.append(parts)
        table.replace(placeholder)
    _names(tree, d)
    text = _generate(tree, d, pretty=True)
    for i, parts in enumerate(relations):
        name = d.stored_name(_PLACEHOLDER.format(i))
        quoted = _generate(exp.to_identifier(name, quoted=True), d, False)
        text = text.replace(quoted, d.relation(parts).text)
    return text


def source_sql(source: Source, d: Dialect) -> Sql:
    """What a FROM clause reads: the relation, or the query in parentheses."""
    if not isinstance(source, SourceQuery):
        return d.relation(source)
    body = "\n".join("  " + line for line in query_sql(source, d).splitlines())
    return Sql(f"(\n{body}\n)")


def expression_sql(e: Expression, d: Dialect, qualifier: str) -> Sql:
    """A measure's expression over the source's columns, read through `qualifier`."""
    tree = parse_expression(e.sql, e.dialect).copy()
    for col in list(tree.find_all(exp.Column)):
        col.set("table", exp.to_identifier(qualifier))
    _names(tree, d)
    return Sql("(" + _generate(tree, d, pretty=False) + ")")


def measure_input(column: str | Expression, d: Dialect, qualifier: str) -> Sql:
    """A measure's input: a column of the source, or an expression over its columns."""
    if isinstance(column, Expression):
        return expression_sql(column, d, qualifier)
    return d.qualified((qualifier, column))
