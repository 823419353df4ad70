"""Every statement sqlanon generates parses whole with sqlglot in its own dialect, and the
fragment engine's own checks catch what would otherwise be bad SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sqlanon.output import emit
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies, load_policy
from sqlanon.review.conformance import case_policy, load_cases
from sqlanon.sql import dialect
from sqlanon.sql.shapes import CompilerBug, Sql

REPO = Path(__file__).resolve().parent.parent


def all_plans():
    yield build_plan(load_policies([str(REPO / "examples/retail/policy.yml")]))
    yield build_plan(load_policies([str(REPO / "examples/adult/policy.yml")]))
    for case in load_cases():
        yield build_plan([load_policy(REPO / "x.yml", text=case_policy(case))])


@pytest.mark.parametrize("name", dialect.available())
def test_every_statement_parses_in_its_dialect(name):
    d = dialect.get(name)
    statements = 0
    for plan in all_plans():
        try:
            artifacts = emit.build(plan, d)
        except dialect.DialectError as exc:  # a gap the dialect declares (docs/dialects.md)
            assert "float" in d.features.unsupported_canonical, exc
            continue
        for artifact in artifacts:
            if not artifact.path.endswith(".sql"):
                continue
            text = artifact.content.decode()
            trees = [t for t in sqlglot.parse(text, read=d.sqlglot) if t is not None]
            assert trees, artifact.path
            for tree in trees:
                assert not isinstance(tree, exp.Command), f"{artifact.path}: opaque statement"
            statements += len(trees)
    assert statements > 60


def test_a_template_that_does_not_parse_is_a_compiler_bug():
    from sqlanon.sql.shapes import ShapeCache

    shapes = ShapeCache("duckdb", {"broken": lambda x: f"CASE WHEN {x} THEN"})
    with pytest.raises(CompilerBug, match="does not parse"):
        shapes.call("broken", [Sql("1")], {}, statement=False)


def test_an_argument_pasted_into_a_string_is_a_compiler_bug():
    from sqlanon.sql.shapes import ShapeCache

    shapes = ShapeCache("duckdb", {"leaky": lambda x: f"'prefix {x}'"})
    with pytest.raises(CompilerBug, match="outside an expression slot"):
        shapes.call("leaky", [Sql("1")], {}, statement=False)


def test_structural_parameters_cannot_carry_text():
    d = dialect.get("duckdb")
    with pytest.raises(CompilerBug, match="not a plain word"):
        d.prim("truncate_date", d.ident("x"), unit="month'); DROP TABLE t; --", type="date")


def test_compound_arguments_are_parenthesized_where_precedence_matters():
    d = dialect.get("duckdb")
    a = d.prim("sub", d.ident("a"), d.ident("b"))
    assert d.prim("sub", d.ident("c"), a).text == '"c" - ("a" - "b")'
    assert (
        d.prim("substring", a, d.number(1), d.number(2)).text == 'SUBSTRING("a" - "b" FROM 1 FOR 2)'
    )
    assert d.prim("sub", d.ident("c"), d.number(-1)).text == '"c" - (-1)'


def test_identifiers_and_literals_are_quoted_and_verified():
    d = dialect.get("duckdb")
    assert d.ident('we"ird; DROP TABLE x; --').text == '"we""ird; DROP TABLE x; --"'
    assert d.string("it's\n'); DROP TABLE x; --").text == "'it''s\n''); DROP TABLE x; --'"
