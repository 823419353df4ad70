"""The dialect contract (docs/architecture.md): a dialect.yml's `features:` are a typed, frozen
structure that refuses unknown keys, and the engine a dialect runs on is named by its
dialect.yml (`engine:`), not chosen in code — so a new dialect on an existing engine is one
folder, as the toy DuckDB variant here shows."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlanon import api, resources, testing
from sqlanon.review.conformance import load_cases, run_case
from sqlanon.sql import dialect
from sqlanon.sql.dialect import DialectError, Features

REPO = Path(__file__).resolve().parents[1]


def test_features_are_typed_and_frozen():
    pg = dialect.get("postgres").features
    assert pg.lock_table and pg.transactional_ddl and pg.grants
    with pytest.raises(dataclasses.FrozenInstanceError):
        pg.grants = False  # type: ignore[misc]
    assert Features.read(None, "x") == Features()


def test_an_unknown_feature_is_refused_with_its_file():
    with pytest.raises(DialectError, match=r"toy\.yml: unknown feature\(s\) transactionnal_ddl"):
        Features.read({"transactionnal_ddl": True}, "toy.yml")


@pytest.fixture
def duckling(tmp_path: Path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A copy of dialects/ with one more folder: `duckling`, DuckDB's templates under another
    name, running on the DuckDB runner."""
    root = tmp_path / "dialects"
    shutil.copytree(resources.dialects_dir(), root)
    toy = root / "duckling"
    shutil.copytree(root / "duckdb", toy)
    config = (toy / "dialect.yml").read_text()
    config = config.replace("name: duckdb", "name: duckling").replace(
        "title: DuckDB", "title: Duckling\nengine: duckdb"
    )
    (toy / "dialect.yml").write_text(config)
    monkeypatch.setattr(resources, "dialects_dir", lambda: root)
    for cached in (dialect.get, dialect.aliases):
        cached.cache_clear()
    try:
        yield "duckling"
    finally:
        for cached in (dialect.get, dialect.aliases):
            cached.cache_clear()


def test_a_dialect_is_one_folder(duckling):
    assert duckling in dialect.available()
    plan = api.plan([REPO / "examples" / "retail" / "policy.yml"])
    files = {a.path: a.content for a in api.build(plan, duckling)}
    assert b"for Duckling" in files["views/anon.customers.sql"]
    case = next(c for c in load_cases() if c.transform == "pseudonymize")
    with testing.session(duckling) as engine:  # the runner its dialect.yml names
        assert run_case(case, dialect.get(duckling), engine).ok


def test_a_dialect_without_a_runner_is_unavailable(duckling, monkeypatch):
    monkeypatch.setattr(dialect.get(duckling), "engine", "nowhere")
    with (
        pytest.raises(testing.EngineUnavailable, match="no engine runner for 'duckling'"),
        testing.session(duckling),
    ):
        pass


def test_a_primitive_a_dialect_lacks_fails_naming_its_contract(duckling):
    """Every primitive without a standard spelling is declared in dialects/base with its
    contract; a new dialect that has not spelled one yet learns which, on first use."""
    folder = resources.dialects_dir() / duckling
    text = (folder / "primitives.sql.j2").read_text()
    start = text.index("{% macro utf8(")
    end = text.index("{% endmacro %}", start) + len("{% endmacro %}")
    if text[start:end].count("\n") == 0:
        (folder / "primitives.sql.j2").write_text(text[:start] + text[end:])
    else:  # pragma: no cover - the DuckDB spelling is one line today
        raise AssertionError("utf8 spans lines: adjust the test")
    dialect.get.cache_clear()
    plan = api.plan([REPO / "examples" / "retail" / "policy.yml"])
    with pytest.raises(DialectError, match=r"does not define the primitive 'utf8'.*base"):
        api.build(plan, duckling)


def test_every_dialect_defines_every_declared_primitive():
    base = (REPO / "dialects" / "base" / "primitives.sql.j2").read_text()
    declared = [
        line.split("macro ", 1)[1].split("(", 1)[0]
        for line in base.splitlines()
        if "undefined_primitive(" in line
    ]
    assert len(declared) >= 9
    for name in dialect.available():
        d = dialect.get(name)
        spelled = (d.folder / "primitives.sql.j2").read_text()
        missing = [p for p in declared if f"macro {p}(" not in spelled]
        assert missing == [], f"{name} lacks {missing}"
