"""`sqlanon drift`: adding, removing and retyping source columns give the documented outcomes
(docs/drift.md), on a DuckDB file and on the real PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fresh_retail_schemas, retail_database

from sqlanon.demo.retail import generate, load
from sqlanon.measure.drift import check
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.sql import dialect
from sqlanon.warehouse.duckdb import DuckDBEngine

REPO = Path(__file__).resolve().parent.parent
RETAIL = REPO / "examples/retail/policy.yml"


@pytest.fixture
def shop(tmp_path) -> Path:
    return retail_database(tmp_path / "shop.duckdb")


def _alter(db: Path, *statements: str) -> None:
    e = DuckDBEngine(str(db))
    try:
        for s in statements:
            e.execute(s)
    finally:
        e.close()


def _drift(cli, db: Path, policy: Path = RETAIL) -> tuple[int, list[dict]]:  # type: ignore[no-untyped-def]
    result = cli("drift", str(policy), "--db", str(db), "--format", "json")
    return result.exit_code, json.loads(result.output)["findings"]


def test_no_drift_on_the_example(shop, cli):
    assert _drift(cli, shop) == (0, [])
    table = cli("drift", str(RETAIL), "--db", str(shop))
    assert table.exit_code == 0 and "no drift" in table.output


def test_a_new_column_is_reported_and_stays_dropped(shop, cli):
    _alter(shop, "ALTER TABLE raw.customers ADD COLUMN ssn VARCHAR")
    code, findings = _drift(cli, shop)
    assert code == 0
    (f,) = findings
    assert (f["severity"], f["kind"], f["column"]) == ("warning", "new_column", "ssn")
    assert "stays out of the view" in f["detail"]


def test_a_new_column_is_an_error_where_the_policy_says_so(shop, cli, workdir):
    _alter(shop, "ALTER TABLE raw.customers ADD COLUMN ssn VARCHAR")
    policy = workdir / "examples/retail/policy.yml"
    policy.write_text(
        policy.read_text().replace("unlisted_columns: drop", "unlisted_columns: error", 1)
    )
    code, findings = _drift(cli, shop, policy)
    assert code == 1 and findings[0]["severity"] == "error" and findings[0]["column"] == "ssn"


def test_a_missing_column_is_an_error(shop, cli):
    _alter(shop, "ALTER TABLE raw.customers DROP COLUMN phone")
    code, findings = _drift(cli, shop)
    assert code == 1
    (f,) = findings
    assert (f["severity"], f["kind"], f["column"], f["object"]) == (
        "error",
        "missing_column",
        "phone",
        "table customers",
    )


def test_retyped_columns_are_errors(shop, cli):
    # income feeds a bucket (numbers only); amount is declared `type: decimal`
    _alter(
        shop,
        "ALTER TABLE raw.customers ALTER COLUMN income TYPE VARCHAR",
        "ALTER TABLE raw.orders ALTER COLUMN amount TYPE VARCHAR",
    )
    code, findings = _drift(cli, shop)
    assert code == 1
    got = {(f["object"], f["column"]): f for f in findings}
    assert got[("table customers", "income")]["kind"] == "type_changed"
    assert "bucket takes number" in got[("table customers", "income")]["detail"]
    assert "declared decimal" in got[("table orders", "amount")]["detail"]
    # the release summing amount sees it too
    assert "needs a number" in got[("release orders_by_status", "amount")]["detail"]


def test_a_missing_source_is_an_error(shop, cli):
    _alter(shop, "DROP VIEW anon.web_sessions", "DROP TABLE raw.web_sessions")
    code, findings = _drift(cli, shop)
    assert code == 1 and findings[0]["kind"] == "missing_source"


def test_postgres_catalog(live):
    """The same checks read PostgreSQL's catalog."""
    engine = live.get("postgres")
    d = dialect.get("postgres")
    plan = build_plan(load_policies([str(RETAIL)]))
    fresh_retail_schemas(engine)
    load(engine, generate(50, seed=1))
    assert check(plan, engine) == []
    engine.execute('ALTER TABLE "raw"."customers" ADD COLUMN "ssn" text')
    engine.execute('ALTER TABLE "raw"."customers" ALTER COLUMN "income" TYPE text')
    kinds = {(f.kind, f.column) for f in check(plan, engine)}
    assert kinds == {("new_column", "ssn"), ("type_changed", "income")}
    engine.execute('ALTER TABLE "raw"."customers" DROP COLUMN "ssn"')
    engine.execute(
        'ALTER TABLE "raw"."customers" ALTER COLUMN "income" TYPE integer USING "income"::integer'
    )
    assert d.name == "postgres"


def test_a_dropped_column_that_disappears_is_only_reported(shop, cli):
    _alter(shop, "ALTER TABLE raw.customers DROP COLUMN full_name")  # `full_name: drop`
    code, findings = _drift(cli, shop)
    assert code == 0
    (f,) = findings
    assert (f["severity"], f["kind"], f["column"]) == ("warning", "missing_column", "full_name")
