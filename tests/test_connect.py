"""One warehouse layer: --db URL → connection, for every command. Snowflake is driven through
the CLI by URL, its real connector patched by fakesnow (the client path is the product's own);
a missing driver, a password in a URL or an unknown scheme is a one-line error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import engine_unavailable, require_module

from sqlanon.demo.retail import generate, load
from sqlanon.testing.fakesnow import NOP
from sqlanon.warehouse.connect import ConnectError, connect, snowflake_args

REPO = Path(__file__).resolve().parents[1]
POLICY = str(REPO / "examples/retail/policy.yml")
URL = "snowflake://tester@acme-test/SQLANON/PUBLIC?warehouse=ANON_WH&role=ANALYST"


def test_snowflake_urls_become_connector_arguments(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "s3cret")
    assert snowflake_args(URL) == {
        "account": "acme-test",
        "user": "tester",
        "database": "SQLANON",
        "schema": "PUBLIC",
        "warehouse": "ANON_WH",
        "role": "ANALYST",
        "password": "s3cret",
    }
    with pytest.raises(ConnectError, match="SNOWFLAKE_PASSWORD, not in the URL"):
        snowflake_args("snowflake://tester:pw@acme/DB")
    with pytest.raises(ConnectError, match=r"\?token=: not a setting"):
        snowflake_args("snowflake://tester@acme/DB?token=x")


def test_unknown_schemes_missing_drivers_and_missing_files_are_one_line(
    monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConnectError, match=r"unknown scheme mysql://"):
        connect("mysql://h/db")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    missing = r"PostgreSQL driver .*pip install 'sqlanon\[postgres\]'"
    with pytest.raises(ConnectError, match=missing):
        connect("postgresql://localhost/x")
    with pytest.raises(ConnectError, match="no database at"):
        connect(str(tmp_path / "typo.duckdb"))
    assert not (tmp_path / "typo.duckdb").exists()
    connect(str(tmp_path / "new.duckdb"), create=True).close()
    assert (tmp_path / "new.duckdb").exists()


def deploy_and_measure(cli, url: str, dialect: str, build: Path, customers: int, measures) -> None:  # type: ignore[no-untyped-def]
    """What a user does with a warehouse URL: load the retail data, compile, load every key,
    check them, deploy the folder, check drift and measure — each command by --db URL."""
    engine = connect(url)
    load(engine, generate(customers, seed=3))
    engine.close()
    assert cli("compile", POLICY, "--dialect", dialect, "--out", str(build)).exit_code == 0
    for key in ("customer", "order", "sampling", "session", "noise"):
        got = cli("keys", "load", "--db", url, "--policy", POLICY, "--name", key, "--generate")
        assert got.exit_code == 0, got.output
    got = cli("keys", "status", POLICY, "--db", url)
    assert got.exit_code == 0, got.output
    got = cli("deploy", str(build), "--db", url, "--policy", POLICY)
    assert got.exit_code == 0, got.output
    assert "deploy 1" in got.output
    got = cli("drift", POLICY, "--db", url)
    assert got.exit_code == 0, got.output
    for command in measures:
        got = cli(command, POLICY, "--db", url)
        assert got.exit_code in (0, 1), got.output  # 1: a declared check not met
        assert "Traceback" not in got.output and "error:" not in got.output, got.output


def test_the_cli_deploys_and_measures_snowflake_by_url(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """compile → keys load → deploy → keys status, drift and risk, each by --db URL through
    snowflake-connector-python (fakesnow serves it: one emulated account per patch)."""
    fakesnow = require_module("fakesnow", "the Snowflake emulator")
    build = tmp_path / "build"
    with fakesnow.patch(nop_regexes=NOP):  # no roles in fakesnow: GRANT succeeds, no effect
        deploy_and_measure(cli, URL, "snowflake", build, 300, ("risk", "utility"))
        engine = connect(URL)
        try:
            (count,) = engine.query('SELECT COUNT(*) FROM "ANON"."CUSTOMERS"')[0]
            deploys = engine.query('SELECT "DATABASE_USER" FROM "PRIVACY"."SQLANON_DEPLOYS"')
        finally:
            engine.close()
        assert 0 < count <= 300 and len(deploys) == 1


def test_spark_by_url(live) -> None:  # type: ignore[no-untyped-def]
    """spark://local is this process's session (the tests' one, started first, is reused);
    closing the engine leaves it up."""
    live.get("spark")
    engine = connect("spark://local")
    try:
        assert engine.dialect == "spark"
        assert engine.query("SELECT 1 + 1") == [(2,)]
    finally:
        engine.close()


def test_the_cli_deploys_and_measures_bigquery_by_url(cli, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """compile → keys load → keys status → deploy → drift → risk, each by a bigquery:// URL
    through google-cloud-bigquery, served by bqemulator (sqlanon/testing/bqemulator.py). The
    client path only: what the SQL means on BigQuery is the ZetaSQL runner's to check."""
    require_module("google.cloud.bigquery", "the BigQuery client")
    from sqlanon import testing
    from sqlanon.testing.bqemulator import emulator, without_gaps
    from sqlanon.warehouse.bigquery import BigQueryEngine

    query = BigQueryEngine.query
    monkeypatch.setattr(
        BigQueryEngine,
        "query",
        lambda self, sql, params=(), fetch=True: query(self, without_gaps(sql), params, fetch),
    )
    try:
        started = emulator()
        url = started.__enter__()
    except testing.EngineUnavailable as exc:
        engine_unavailable("bqemulator", str(exc))
    try:
        deploy_and_measure(cli, url, "bigquery", tmp_path / "build", 60, ("risk",))
        engine = connect(url)
        try:
            (orders,) = engine.query("SELECT COUNT(*) FROM `anon.orders`")[0]
            pseudonyms = engine.query("SELECT order_id FROM `anon.orders` LIMIT 5")
            deploys = engine.query("SELECT database_user FROM `privacy.sqlanon_deploys`")
        finally:
            engine.close()
        assert orders > 0 and len(deploys) == 1
        assert all(len(p) == 16 and int(p, 16) >= 0 for (p,) in pseudonyms)
    finally:
        started.__exit__(None, None, None)


def test_bigquery_urls_and_parameters() -> None:
    """What a bigquery:// URL may say, and how `?` values reach BigQuery: renamed @p0, …
    (never inside a literal) and typed from their Python type."""
    import datetime as dt
    from decimal import Decimal

    from sqlanon.warehouse.bigquery import named_parameters, parameter_type

    for bad in ("bigquery://", "bigquery://p/dataset", "bigquery://u:pw@p", "bigquery://p?key=x"):
        with pytest.raises(ConnectError):
            connect(bad)
    sql, values = named_parameters("SELECT ?, '?', `a?` FROM t WHERE x = ?", [1, "b"])
    assert sql == "SELECT @p0, '?', `a?` FROM t WHERE x = @p1" and values == {"p0": 1, "p1": "b"}
    kinds = [1, 1.5, True, b"k", "s", None, Decimal("1.1"), dt.date(2024, 1, 1)]
    assert [parameter_type(v) for v in kinds] == [
        "INT64", "FLOAT64", "BOOL", "BYTES", "STRING", "STRING", "NUMERIC", "DATE",
    ]  # fmt: skip
