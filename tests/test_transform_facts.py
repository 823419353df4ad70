"""Facts about a transform live on the transform (docs/architecture.md): `diff` reads its
disclosure rank and which parameters disclose more when larger, releases read whether it makes
a group key, `utility` whether it keeps order. Adding a transform is one module plus its
vectors: the toy transform below is one class and one vector file, and validate, compile,
the engine, the conformance runner, releases and the diff all take it without another edit."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlanon import api
from sqlanon.plan.model import QUASI, ColumnStep
from sqlanon.review.conformance import load_cases, run_case
from sqlanon.review.diff import WEAKENED, compare
from sqlanon.sql import dialect
from sqlanon.sql.shapes import Sql
from sqlanon.transforms import REGISTRY
from sqlanon.transforms.base import LowerContext, Transform, register
from sqlanon.transforms.common import canonical
from sqlanon.warehouse.duckdb import DuckDBEngine


def test_every_transform_declares_its_facts():
    for name, t in REGISTRY.items():
        cls = type(t)
        assert "disclosure" in vars(cls), f"{name} must declare its disclosure rank"
        assert t.disclosure in range(6), name
        params = {p.name for p in t.params}
        for param, sign in t.larger_discloses_more:
            assert param in params and sign in (1, -1), (name, param)
    assert REGISTRY["drop"].disclosure < REGISTRY["pseudonymize"].disclosure
    assert REGISTRY["keep"].disclosure == max(t.disclosure for t in REGISTRY.values())


class Initial(Transform):
    """The toy: a value's first character (a name's initial)."""

    name = "initial"
    disclosure = 3
    groupable = True
    summary = "Keep the first character."
    nulls = "NULL stays NULL."
    types_doc = "Works on the canonical text; the output is text."
    example = "name: initial"
    privacy_class = QUASI
    reads_canonical_text = True

    def output_type(self, input_type: str, p: dict) -> str | None:  # type: ignore[type-arg]
        return "text"

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        d = ctx.dialect
        return d.prim("substring", canonical(ctx, x, step.input_type), d.number(1), d.number(1))


@pytest.fixture
def toy() -> Iterator[None]:
    register(Initial)
    try:
        yield
    finally:
        del REGISTRY["initial"]


VECTORS = """\
transform: initial
cases:
  - vectors:
      - ["Ada", "A"]
      - ["", ""]
      - [null, null]
      - ["Émile", "É"]
"""


def test_a_toy_transform_is_one_module_and_one_vector_file(toy, tmp_path: Path):
    folder = tmp_path / "conformance"
    folder.mkdir()
    (folder / "initial.yml").write_text(VECTORS)
    (case,) = load_cases(folder)
    engine = DuckDBEngine()
    try:
        outcome = run_case(case, dialect.get("duckdb"), engine)
    finally:
        engine.close()
    assert outcome.ok, outcome.failures

    def policy(transform: str) -> Path:
        path = tmp_path / f"{transform}.yml"
        path.write_text(
            textwrap.dedent(f"""\
            sqlanon: 1
            name: toy
            keys: {{table: privacy.keys}}
            tables:
              people:
                source: raw.people
                target: anon.people
                columns:
                  name: {transform}
            releases:
              by_initial:
                source: raw.people
                target: anon.by_initial
                privacy_unit: id
                epsilon: 1
                delta: 1.0e-6
                group_by:
                  name: {transform}
                measures:
                  people: {{agg: count_units}}
            budget: {{epsilon: 1, delta: 1.0e-6}}
            """)
        )
        return path

    old, new = api.plan([policy("initial")]), api.plan([policy("keep")])
    for name in dialect.available():  # compiles for every dialect
        assert api.build(old, name)
    changes = compare(old, new)
    assert any(c.verdict == WEAKENED and "initial → keep" in c.change for c in changes), changes
