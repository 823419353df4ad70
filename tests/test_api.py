"""The Python API (sqlanon/api.py) gives what `sqlanon compile` writes, and its errors are the
located exceptions the CLI renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlanon import api

REPO = Path(__file__).resolve().parents[1]
RETAIL = REPO / "examples" / "retail"


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql"])
def test_build_equals_the_committed_output(dialect):
    plan = api.plan([RETAIL / "policy.yml"])
    name = api.get_dialect(dialect).name
    for artifact in api.build(plan, dialect):
        committed = RETAIL / "build" / name / artifact.path
        assert committed.read_bytes() == artifact.content, artifact.path


def test_write_then_check(tmp_path):
    plan = api.plan(api.load([RETAIL / "policy.yml"]))
    first = api.write(plan, tmp_path, "snowflake")
    assert first.missing and not first.stale
    assert api.check(plan, tmp_path, "snowflake").ok
    assert not api.check(plan, tmp_path, "bigquery").ok
    assert api.check(plan, tmp_path / "dbt", format="dbt").missing


def test_errors_are_the_located_exceptions(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text((RETAIL / "policy.yml").read_text().replace("k: ", "kk: ", 1))
    with pytest.raises(api.PolicyError) as caught:
        api.plan([bad])
    assert "bad.yml:" in caught.value.render()
    with pytest.raises(api.DialectError, match="unknown dialect 'oracle'"):
        api.get_dialect("oracle")
