"""The generated SQL is read by reviewers in a pull request: short lines, each shared value
computed once, a comment per output column — and the layout pass changes no token."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from sqlanon.api import plan
from sqlanon.sql import dialect
from sqlanon.sql.layout import MAX_LINE, wrap
from sqlanon.sql.releases import release_statements
from sqlanon.sql.views import commented, view_statements

ROOT = Path(__file__).resolve().parent.parent
DIALECTS = ["duckdb", "postgres", "bigquery", "snowflake", "spark"]
EXAMPLES = ["retail", "adult", "tpch"]
REPEAT_LIMIT = 40


def _sql_files(example: str, name: str) -> list[Path]:
    folder = ROOT / "examples" / example / "build" / name
    return sorted(folder.rglob("*.sql"))


@pytest.mark.parametrize("name", DIALECTS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_no_line_of_the_examples_is_longer_than_the_limit(example: str, name: str) -> None:
    files = _sql_files(example, name)
    assert files
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            assert len(line) <= MAX_LINE, f"{path.relative_to(ROOT)}:{n} has {len(line)}"


def _repeated(text: str, read: str) -> list[str]:
    """Subexpressions of more than REPEAT_LIMIT characters written more than once."""
    seen: collections.Counter[str] = collections.Counter()
    for tree in sqlglot.parse(text, read=read):
        for node in tree.walk() if tree is not None else ():
            # names and types are spelled, not computed (BigQuery's lookup pairs each declare
            # their struct type)
            if isinstance(node, exp.Identifier | exp.Literal | exp.Column | exp.Table):
                continue
            if isinstance(node, exp.DataType):
                continue
            sql = node.sql(dialect=read)
            if len(sql) > REPEAT_LIMIT:
                seen[sql] += 1
    return [sql for sql, n in seen.items() if n > 1]


@pytest.mark.parametrize("name", DIALECTS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_a_view_computes_each_shared_value_once(example: str, name: str) -> None:
    d = dialect.get(name)
    for path in _sql_files(example, name):
        if path.parent.name == "views":
            assert _repeated(path.read_text(encoding="utf-8"), d.sqlglot) == [], path


def test_each_view_column_says_which_transform_made_it() -> None:
    text = (ROOT / "examples/retail/build/duckdb/views/anon.customers.sql").read_text()
    assert "-- mask_email(keep_first=1, keep_domain=true, char='*')\n" in text
    age = "-- age(as_of=2026-01-01, edges=[18, 25, 35, 50, 65], output='label') of birth_date"
    assert age in text
    assert "-- generalize(hierarchy='hierarchies/occupation.csv', level=1, unknown='*')" in text
    # the age formula is written once, in a step, and each bucket compares its name
    assert text.count("EXTRACT(YEAR FROM") == 2
    assert 'WHEN "birth_date_age" >= 65' in text


def test_constants_and_engine_tricks_are_explained_where_they_appear() -> None:
    release = "examples/retail/build/postgres/releases/analytics.orders_by_status_year.sql"
    text = (ROOT / release).read_text()
    assert "4503599627370496" in text and "/* 2^52: 13 hex digits as a uniform" in text
    assert "/* ln p = -epsilon / sensitivity */" in text
    assert "/* PostgreSQL has no error()" in text


def _tokens(text: str, read: str) -> list[tuple[str, str]]:
    return [(t.token_type.name, t.text) for t in sqlglot.Dialect.get_or_raise(read).tokenize(text)]


@pytest.mark.parametrize("name", DIALECTS)
def test_the_layout_pass_changes_no_token(name: str) -> None:
    """Every statement of both examples, before and after wrapping: the same tokens."""
    d = dialect.get(name)
    wrapped = 0
    for example in EXAMPLES:
        p = plan([ROOT / "examples" / example / "policy.yml"])
        statements = [s for v in p.views for s in view_statements(v, d)]
        statements += [s for r in p.releases for s in release_statements(r, d)]
        for s in statements:
            out = wrap(s.text, d.sqlglot)
            assert _tokens(out, d.sqlglot) == _tokens(s.text, d.sqlglot)
            wrapped += out != s.text
    assert wrapped


WORD = st.sampled_from(["a", '"b c"', "'d e'", "f(", ")", ",", "||", "AND", "x.y", "/* n */", "1"])


@settings(max_examples=200, deadline=None)
@given(st.lists(WORD, min_size=1, max_size=200), st.integers(10, 80))
def test_wrapping_any_token_soup_keeps_its_tokens(words: list[str], limit: int) -> None:
    text = " ".join(words)
    out = wrap(text, "duckdb", limit)
    assert _tokens(out, "duckdb") == _tokens(text, "duckdb")
    assert out.replace("\n", " ").split() == text.split()


def test_a_column_comment_cannot_end_its_line() -> None:
    d = dialect.get("duckdb")
    sql = commented("x\n DROP TABLE t; -- \u2028 \x00 é", d.number(1))
    comment, expr = sql.text.split("\n")
    assert expr == "1" and comment.startswith("-- ") and comment.isascii()


@pytest.mark.parametrize("name", DIALECTS)
def test_a_release_reads_each_measure_input_once(name: str) -> None:
    """The retail release sums and averages `amount`: the column is read (and cast) once,
    beneath the steps of both measures, and each bound is a literal the reviewer can read
    (`> 500 … THEN 1000`: beyond the clamp, and not NaN, 1,000 steps of 0.5)."""
    path = ROOT / f"examples/retail/build/{name}/releases/analytics.orders_by_status_year.sql"
    text = path.read_text(encoding="utf-8")
    reads = re.findall(r'(?i)["`]?_sqlanon_src["`]?\.["`]?amount["`]?', text)
    assert len(reads) == 1, reads
    assert re.search(r"(?i)_sqlanon_in2[\"`]? > 500\) AND \(NOT [^\n]* THEN 1000\n", text)
    assert "LEAST(GREATEST(" not in text.upper().split("_SQLANON_PAIRS")[0]
