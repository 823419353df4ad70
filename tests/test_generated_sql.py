"""Every statement sqlanon generates parses whole with sqlglot in its own dialect, and the
fragment engine's own checks catch what would otherwise be bad SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
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
        shapes.call("broken", [Sql("1")], {}, "expression")


def test_an_argument_pasted_into_a_string_is_a_compiler_bug():
    from sqlanon.sql.shapes import ShapeCache

    shapes = ShapeCache("duckdb", {"leaky": lambda x: f"'prefix {x}'"})
    with pytest.raises(CompilerBug, match="outside an expression slot"):
        shapes.call("leaky", [Sql("1")], {}, "expression")


def test_a_select_list_goes_only_where_select_items_go():
    """A view's columns are one list fragment; its own shape then does not depend on their
    number. The fragment is verified as exactly one item per element, and no other hole —
    a function's argument, an operand, a WHERE — takes it (it would change the arity or the
    meaning), so the composition stays one item per slot."""
    from sqlanon.sql.shapes import ShapeCache

    d = dialect.get("duckdb")
    cols = d.items(
        "select_list",
        [d.prim("sub", d.ident("a"), d.ident("b")), d.ident("c")],
        [d.ident("x"), d.ident("y")],
    )
    assert cols.text == '"a" - "b" AS "x",\n"c" AS "y"' and cols.atomic is None
    macros = {
        "select": lambda x: f"SELECT 1, {x} FROM t",
        "call": lambda x: f"SELECT COALESCE({x}) FROM t",
        "operand": lambda x: f"SELECT 1 + {x}",
        "where": lambda x: f"SELECT 1 FROM t WHERE {x}",
        "aliased": lambda x: f"SELECT {x} AS z FROM t",
    }
    shapes = ShapeCache("duckdb", macros)
    assert shapes.call("select", [cols], {}, "statement").text == (
        'SELECT 1, "a" - "b" AS "x",\n"c" AS "y" FROM t'
    )
    for name in ("call", "operand", "where", "aliased"):
        with pytest.raises(CompilerBug, match="outside a select list"):
            shapes.call(name, [cols], {}, "statement")
    lists = ShapeCache(
        "duckdb",
        {
            "more": lambda xs: ", ".join([*xs, "1"]),  # an item no element accounts for
            "clause": lambda xs: ", ".join(xs) + " FROM t",
            "in_string": lambda xs: "'" + ", ".join(xs) + "'",
        },
    )
    for name in ("more", "clause", "in_string"):
        with pytest.raises(CompilerBug, match="not a select list"):
            lists.call(name, [[Sql("1"), Sql("2")]], {}, "list")


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


@pytest.mark.parametrize("name", dialect.available())
@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abcXYZ019_.", min_size=1, max_size=20)
    | st.from_regex(r"[\w.]+", fullmatch=True)
)
def test_a_plain_name_is_quoted_as_sqlglot_quotes_it(name, text):
    """Plain names skip sqlglot's quoting and its read-back (ShapeCache.identifier): the text
    must be what that path gives, for any name the shortcut takes."""
    shapes = dialect.get(name)._shapes
    assert shapes.identifier(text) == shapes._quoted(text)


@pytest.mark.parametrize("name", dialect.available())
def test_a_long_list_is_the_shape_parsing_it_would_give(name):
    """Lists of more than 3 items repeat the parsed 2- and 3-item shapes instead of being
    parsed (ShapeCache._periodic): for every list template, each length gives the shape the
    parse gives, hole kinds and indents included."""
    from sqlanon.sql.shapes import ShapeCache

    d = dialect.get(name)
    for template, lists in (("select_list", 2), ("column_list", 1)):
        quick = ShapeCache(d.sqlglot, d._shapes.macros)
        parsed = ShapeCache(d.sqlglot, d._shapes.macros)
        for n in (4, 5, 9, 50):
            arity = (n,) * lists
            assert quick._periodic(template, lists, n, {}) is not None
            assert quick.call_shape(template, arity, {}, "list") == parsed._build(
                template, arity, {}, "list"
            )


def test_a_list_template_that_misbehaves_only_when_long_is_still_caught():
    """The shortcut trusts a long list only when the template's own text for it is the 2-item
    shape repeated: one that is a fine list at 2 and 3 items but swallows its arguments into a
    string, adds an item, or starts a clause from the 4th item on is parsed, and refused."""
    from sqlanon.sql.shapes import ShapeCache

    def select_list(xs, names, bad):
        items = [f"{x} AS {n}" for x, n in zip(xs, names, strict=True)]
        if len(items) > 3:
            if bad == "string":
                items[3] = f"'{xs[3]}' AS {names[3]}"
            elif bad == "extra":
                items.append("1 AS one")
            else:
                return ",\n".join(items) + " FROM t"
        return ",\n".join(items)

    shapes = ShapeCache("duckdb", {"select_list": select_list})
    for bad in ("string", "extra", "clause"):
        items = [Sql(str(i)) for i in range(3)]
        names = [Sql(f"c{i}") for i in range(3)]
        assert shapes.call("select_list", [items, names], {"bad": bad}, "list").text
        with pytest.raises(CompilerBug):
            shapes.call(
                "select_list", [[*items, Sql("3")], [*names, Sql("c3")]], {"bad": bad}, "list"
            )
