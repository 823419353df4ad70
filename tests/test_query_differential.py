"""The SQL a source may use means the same on every engine (docs/sources.md): random
expressions of the allowed subset — arithmetic, CASE, COALESCE, comparisons, AND/OR/NOT,
IS NULL, IN, BETWEEN — over integer columns holding NULLs, lowered per dialect and run on all
five engines, are compared with a Python reference of SQL's three-valued logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlanon.plan.model import SourceQuery
from sqlanon.plan.query import describe_query
from sqlanon.sql import dialect
from sqlanon.sql.query import query_sql
from sqlanon.warehouse import ENGINES

TARGETS = [e for e in ENGINES if e in dialect.available()]
COLUMNS = ("a", "b", "c")
ROWS = [
    (1, 3, -2, 0),
    (2, None, 5, 7),
    (3, 0, None, -1),
    (4, -4, 4, None),
    (5, None, None, None),
    (6, 9, 9, 9),
]
Row = dict[str, Any]
Expr = tuple[str, Callable[[Row], Any]]


def _null(*xs: Any) -> bool:
    return any(x is None for x in xs)


def _and(x: Any, y: Any) -> Any:
    if x is False or y is False:
        return False
    return None if _null(x, y) else True


def _or(x: Any, y: Any) -> Any:
    if x is True or y is True:
        return True
    return None if _null(x, y) else False


CMP: dict[str, Callable[[int, int], bool]] = {
    "=": lambda x, y: x == y,
    "<>": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


def _literal(n: int) -> Expr:
    return (str(n) if n >= 0 else f"(-{-n})", lambda r: n)


def _column(c: str) -> Expr:
    return (f"t.{c}", lambda r: r[c])


def _ints(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def binary(op: str, f: Callable[[int, int], int]) -> st.SearchStrategy[Expr]:
        return st.tuples(children, children).map(
            lambda xy: (
                f"({xy[0][0]} {op} {xy[1][0]})",
                lambda r, x=xy[0][1], y=xy[1][1]: None if _null(x(r), y(r)) else f(x(r), y(r)),
            )
        )

    neg = children.map(lambda x: (f"(-{x[0]})", lambda r, f=x[1]: None if f(r) is None else -f(r)))
    case = st.tuples(_conds(children), children, children).map(
        lambda t: (
            f"CASE WHEN {t[0][0]} THEN {t[1][0]} ELSE {t[2][0]} END",
            lambda r, c=t[0][1], x=t[1][1], y=t[2][1]: x(r) if c(r) is True else y(r),
        )
    )
    coalesce = st.tuples(children, children).map(
        lambda xy: (
            f"COALESCE({xy[0][0]}, {xy[1][0]})",
            lambda r, x=xy[0][1], y=xy[1][1]: x(r) if x(r) is not None else y(r),
        )
    )
    return st.one_of(
        binary("+", lambda x, y: x + y),
        binary("-", lambda x, y: x - y),
        binary("*", lambda x, y: x * y),
        neg,
        case,
        coalesce,
    )


def _conds(ints: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    compare = st.tuples(st.sampled_from(sorted(CMP)), ints, ints).map(
        lambda t: (
            f"({t[1][0]} {t[0]} {t[2][0]})",
            lambda r, op=CMP[t[0]], x=t[1][1], y=t[2][1]: (
                None if _null(x(r), y(r)) else op(x(r), y(r))
            ),
        )
    )
    is_null = st.tuples(ints, st.booleans()).map(
        lambda t: (
            f"({t[0][0]} IS {'NOT ' if t[1] else ''}NULL)",
            lambda r, x=t[0][1], negate=t[1]: (x(r) is None) != negate,
        )
    )
    in_list = st.tuples(ints, st.lists(st.integers(-9, 9), min_size=1, max_size=3)).map(
        lambda t: (
            f"({t[0][0]} IN ({', '.join(_literal(n)[0] for n in t[1])}))",
            lambda r, x=t[0][1], values=tuple(t[1]): None if x(r) is None else x(r) in values,
        )
    )
    between = st.tuples(ints, ints, ints).map(
        lambda t: (
            f"({t[0][0]} BETWEEN {t[1][0]} AND {t[2][0]})",
            lambda r, x=t[0][1], lo=t[1][1], hi=t[2][1]: _and(
                None if _null(x(r), lo(r)) else x(r) >= lo(r),
                None if _null(x(r), hi(r)) else x(r) <= hi(r),
            ),
        )
    )
    simple = st.one_of(compare, is_null, in_list, between)
    logic = st.tuples(simple, simple, st.sampled_from(["AND", "OR", "NOT"])).map(
        lambda t: (
            f"(NOT {t[0][0]})" if t[2] == "NOT" else f"({t[0][0]} {t[2]} {t[1][0]})",
            lambda r, x=t[0][1], y=t[1][1], how=t[2]: (
                (None if x(r) is None else not x(r))
                if how == "NOT"
                else (_and if how == "AND" else _or)(x(r), y(r))
            ),
        )
    )
    return st.one_of(simple, logic)


LEAVES: st.SearchStrategy[Expr] = st.one_of(
    st.integers(-9, 9).map(_literal), st.sampled_from(COLUMNS).map(_column)
)
# shallow enough that every value stays far inside 64 bits (|x| ≤ 9, three levels)
INTS = _ints(_ints(LEAVES) | LEAVES) | LEAVES


@pytest.fixture(scope="module")
def tables(live):  # type: ignore[no-untyped-def]
    """Each engine with the table qd.t (id, a, b, c) loaded."""
    out = {}
    for name in TARGETS:
        engine = live.get(name)
        d = dialect.get(name)
        engine.execute(f"DROP SCHEMA IF EXISTS {d.ident('qd').text} CASCADE")
        engine.execute(d.statement("create_schema", d.relation(("qd",))).text)
        engine.execute(
            d.statement(
                "create_table",
                d.relation(("qd", "t")),
                [d.ident(c) for c in ("id", *COLUMNS)],
                column_types=("integer",) * 4,
            ).text
        )
        engine.load_rows(("qd", "t"), ROWS)
        out[name] = engine
    return out


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(INTS, min_size=8, max_size=8))
def test_every_engine_computes_what_sql_means(tables, exprs: list[Expr]) -> None:  # type: ignore[no-untyped-def]
    items = ", ".join(f"{sql} AS v{i}" for i, (sql, _) in enumerate(exprs))
    text = f"SELECT t.id, {items} FROM qd.t AS t"
    parsed = describe_query(text)
    query = SourceQuery(text, "postgres", parsed.reads, parsed.columns)
    want = sorted(
        (r[0], *(f(dict(zip(COLUMNS, r[1:], strict=True))) for _, f in exprs)) for r in ROWS
    )
    for name, engine in tables.items():
        rows = engine.query(query_sql(query, dialect.get(name)))
        got = sorted(tuple(None if v is None else int(v) for v in row) for row in rows)
        assert got == want, f"{name}: {text}"
