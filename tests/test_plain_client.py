"""The compiled folder runs as is on a fresh warehouse, file by file in the manifest's
`run_order`, with the engine's own client — the recipe of docs/deploy.md followed literally:
views return the rows `apply` creates, releases refresh and record their spend.

Before: `psql -f views/anon.customers.sql` on a fresh database failed with `schema "anon" does
not exist` (no file created its schema) and no document gave the order."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, engine_unavailable, stored_release_rows

from sqlanon import api
from sqlanon.demo.retail import generate, load
from sqlanon.review.conformance import canonical_value
from sqlanon.sql import dialect
from sqlanon.sql.views import view_query
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

RETAIL = REPO / "examples" / "retail" / "policy.yml"
EPOCH = 7


def _compiled(tmp_path: Path, name: str) -> tuple[Path, list[str]]:
    out = tmp_path / name
    api.write(api.plan([RETAIL]), out, name)
    order = json.loads((out / "manifest.json").read_text())["run_order"]
    return out, order


def _epoch_statement(name: str) -> str:
    d = dialect.get(name)
    return d.statement("set_epoch", d.number(EPOCH)).text + ";\n"


def _load_sources(engine, name: str) -> None:  # type: ignore[no-untyped-def]
    d = dialect.get(name)
    for schema in ("raw", "anon", "analytics", "privacy"):
        engine.execute(f"DROP SCHEMA IF EXISTS {d.ident(schema).text} CASCADE")
    if name == "postgres":  # the role the policy grants to must exist (docs/deploy.md)
        engine.execute(
            "DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    load(engine, generate(500, seed=23))


def _load_keys(engine, name: str) -> None:  # type: ignore[no-untyped-def]
    """What `sqlanon keys load` does, between the setup files and the rest."""
    plan = api.plan([RETAIL])
    (table,) = plan.key_tables
    for key in plan.key_names:
        store(engine, dialect.get(name), table, key, 1, f"plain {key}".encode())


def _check(engine, name: str) -> None:  # type: ignore[no-untyped-def]
    """Each view returns what `apply` creates (the plan's view query); each release table
    holds the rows drawn for the nonce its ledger row issued, for the epoch that was set."""
    d = dialect.get(name)
    plan = api.plan([RETAIL])
    for view in plan.views:
        deployed = engine.query(d.statement("select_all", d.relation(view.target)).text)
        applied = engine.query(d.statement("select_query", view_query(view, d)).text)
        assert deployed, view.name
        canon = [
            sorted(tuple(canonical_value(v) for v in r) for r in rows)
            for rows in (deployed, applied)
        ]
        assert canon[0] == canon[1], view.name
    for r in plan.releases:  # 500 customers are too few for orders_by_status's threshold
        stored = stored_release_rows(engine, r)
        assert stored or r.public_groups is None, r.name
        assert {row[0] for row in stored} <= {str(EPOCH)}, r.name
    ledger = d.relation(plan.ledgers[0]).text
    assert engine.query(f"SELECT COUNT(*) FROM {ledger}")[0][0] == len(plan.releases)


def _follow(
    out: Path,
    order: list[str],
    run: Callable[[Path], None],
    refresh: Callable[[Path], None],
    load_keys: Callable[[], None],
) -> None:
    """docs/deploy.md's steps in run_order: the setup files, the keys, the views, then each
    release file as one refresh (`refresh` sets the epoch in the same session)."""
    for rel in order:
        if rel.startswith("setup/"):
            run(out / rel)
    load_keys()
    for rel in order:
        if rel.startswith("views/"):
            run(out / rel)
        elif rel.startswith("releases/"):
            refresh(out / rel)


def test_duckdb_files_run_in_order_with_a_plain_client(tmp_path):
    """DuckDB's client here is the duckdb Python module in a process of its own, given each
    file's text (the CLI takes the same text: `duckdb shop.duckdb < file`)."""
    out, order = _compiled(tmp_path, "duckdb")
    db = tmp_path / "fresh.duckdb"
    engine = DuckDBEngine(str(db))
    _load_sources(engine, "duckdb")
    engine.close()

    def client(text: str) -> None:
        script = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute(sys.stdin.read())"
        result = subprocess.run(
            [sys.executable, "-c", script, str(db)], input=text, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]

    def load_keys() -> None:
        engine = DuckDBEngine(str(db))
        _load_keys(engine, "duckdb")
        engine.close()

    _follow(
        out,
        order,
        lambda f: client(f.read_text()),
        lambda f: client(_epoch_statement("duckdb") + f.read_text()),
        load_keys,
    )
    engine = DuckDBEngine(str(db))
    try:
        _check(engine, "duckdb")
    finally:
        engine.close()


def _psql() -> str:
    found = shutil.which("psql") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True)), None
    )
    if not found:
        engine_unavailable("postgres", "the psql client is not installed")
    return str(found)


def test_postgres_files_run_in_order_with_psql(live, tmp_path):
    engine = live.get("postgres")
    psql = _psql()
    out, order = _compiled(tmp_path, "postgres")
    _load_sources(engine, "postgres")
    info = engine.conn.info
    dsn = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"

    def client(*args: str) -> None:
        result = subprocess.run(
            [psql, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-2000:]

    _follow(
        out,
        order,
        lambda f: client("-f", str(f)),
        lambda f: client("-c", f"SET sqlanon.epoch = {EPOCH}", "-f", str(f)),
        lambda: _load_keys(engine, "postgres"),
    )
    _check(engine, "postgres")


@pytest.mark.slow
def test_spark_files_run_in_order_in_a_session(live, tmp_path):
    """Spark's client is a SparkSession given the file's statements one by one (spark-sql -f
    does the same split on `;`)."""
    engine = live.get("spark")
    out, order = _compiled(tmp_path, "spark")
    _load_sources(engine, "spark")

    def client(text: str) -> None:
        for statement in text.split(";\n\n"):
            body = "\n".join(
                line for line in statement.splitlines() if not line.startswith("--")
            ).strip()
            if body:
                engine.execute(body)

    def refresh(f: Path) -> None:
        client(f"DECLARE OR REPLACE VARIABLE sqlanon_epoch BIGINT DEFAULT {EPOCH};\n\n")
        client(f.read_text())

    _follow(
        out, order, lambda f: client(f.read_text()), refresh, lambda: _load_keys(engine, "spark")
    )
    _check(engine, "spark")
