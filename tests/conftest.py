"""Shared fixtures. Engines that cannot start skip with a reason, unless
SQLANON_REQUIRE_ENGINES=all (set by .ci/run), which turns every such skip into a failure."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqlanon import testing as engines
from sqlanon.cli.app import app
from sqlanon.sql import dialect
from sqlanon.warehouse.duckdb import DuckDBEngine

REPO = Path(__file__).resolve().parent.parent
# compiles in tests (and the commands they run) cache lowered files in a folder of their own,
# never in the user's ~/.cache (sqlanon/output/cache.py)
os.environ.setdefault("SQLANON_CACHE_DIR", tempfile.mkdtemp(prefix="sqlanon-cache-"))


def engine_unavailable(name: str, reason: str) -> None:
    required = os.environ.get("SQLANON_REQUIRE_ENGINES", "")
    if required == "all" or name in required.split(","):
        pytest.fail(f"engine {name} is required here but unavailable: {reason}")
    pytest.skip(f"engine {name} unavailable: {reason}", allow_module_level=True)


def require_module(module: str, why: str):  # type: ignore[no-untyped-def]
    """importorskip that CI turns into a failure (SQLANON_REQUIRE_ENGINES=all), like an engine
    that cannot start: a test extra missing in CI must never pass as a skip."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        engine_unavailable(module, f"{why} ({exc})")


class LiveEngines:
    """Engines started on first use and kept for the test session (one per xdist worker).
    Tests sharing an engine use distinct object names."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[object, object]] = {}
        self._failed: dict[str, str] = {}

    def get(self, name: str):  # type: ignore[no-untyped-def]
        if name in self._failed:
            engine_unavailable(name, self._failed[name])
        if name not in self._open:
            cm = engines.session(name)
            try:
                self._open[name] = (cm, cm.__enter__())
            except engines.EngineUnavailable as exc:
                self._failed[name] = str(exc)
                engine_unavailable(name, str(exc))
        return self._open[name][1]

    def close(self) -> None:
        for cm, _ in self._open.values():
            cm.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def live():
    registry = LiveEngines()
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def duck() -> dialect.Dialect:
    return dialect.get("duckdb")


@pytest.fixture
def engine():
    e = DuckDBEngine()
    yield e
    e.close()


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return run


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A scratch copy of examples/ and policies/ as the working directory."""
    for name in ("examples", "policies"):
        shutil.copytree(
            REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("build", "*.duckdb")
        )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load_adult(engine, d: dialect.Dialect, schema: str, limit: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """examples/adult/adult.csv as `schema.adult` (age an integer, the rest text)."""
    import csv
    import itertools

    with (REPO / "examples/adult/adult.csv").open() as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader)
        rows = [
            tuple(int(v) if h == "age" else v for h, v in zip(header, r, strict=True))
            for r in itertools.islice(reader, limit)
        ]
    engine.execute(d.statement("create_schema", d.relation((schema,))).text)
    engine.execute(
        d.statement(
            "create_table",
            d.relation((schema, "adult")),
            [d.ident(h) for h in header],
            column_types=tuple("integer" if h == "age" else "text" for h in header),
        ).text
    )
    engine.load_rows((schema, "adult"), rows)


def duck_frame(db: Path, sql: str):  # type: ignore[no-untyped-def]
    """The rows of a query on a DuckDB file, as a pandas DataFrame."""
    e = DuckDBEngine(str(db))
    try:
        return e.conn.execute(sql).df()
    finally:
        e.close()


def install_retail(engine, customers: int, seed: int):  # type: ignore[no-untyped-def]
    """examples/retail's generated sources and fixed test keys on `engine`, ready for
    `create`; on the shared PostgreSQL server, in clean schemas and with the role the policy
    grants to. Returns the plan."""
    from sqlanon.demo.retail import generate, load
    from sqlanon.plan.build import build_plan
    from sqlanon.policy.load import load_policies
    from sqlanon.warehouse.apply import create_key_tables
    from sqlanon.warehouse.keys import store

    d = dialect.get(engine.dialect)
    plan = build_plan(load_policies([str(REPO / "examples/retail/policy.yml")]))
    fresh_retail_schemas(engine)
    if engine.dialect == "postgres":
        engine.execute(
            "DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    load(engine, generate(customers, seed=seed))
    create_key_tables(plan, d, engine)
    (key_table,) = plan.key_tables
    for key in plan.key_names:
        store(engine, d, key_table, key, 1, f"test key {key}".encode(), replace=True)
    return plan


def retail_database(path: Path) -> Path:
    """A DuckDB file with examples/retail's generated sources, fixed test keys, the views and
    one refresh of the releases (epoch 1)."""
    from sqlanon.warehouse.apply import create, refresh

    d = dialect.get("duckdb")
    e = DuckDBEngine(str(path))
    try:
        plan = install_retail(e, 3000, seed=3)
        create(plan, d, e)
        refresh(plan, d, e, epoch=1)
    finally:
        e.close()
    return path


FIXED_NONCE = "1@2026-01-01T00:00:00Z"


def release_rows(engine, r, epoch: int, nonce: str = FIXED_NONCE) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    """A release's rows for one epoch drawn for `nonce`, compared across engines as canonical
    text: each engine's own refresh gets its own nonce from its ledger (its clock is part of
    it), so engines are compared on one nonce."""
    from sqlanon.review.conformance import canonical_value
    from sqlanon.sql.releases import release_query

    d = dialect.get(engine.dialect)
    query = release_query(r, d, d.number(epoch), nonce=d.string(nonce))
    rows = engine.query(d.statement("select_query", query).text)
    return sorted((tuple(canonical_value(v) for v in row) for row in rows), key=repr)


def stored_release_rows(engine, r) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    """What the release table holds, which must be what its latest refresh drew for the nonce
    its ledger row holds."""
    from sqlanon.review.conformance import canonical_value

    d = dialect.get(engine.dialect)
    rows = engine.query(d.statement("select_all", d.relation(r.target)).text)
    stored = sorted((tuple(canonical_value(v) for v in row) for row in rows), key=repr)
    ledger = d.relation(r.ledger).text
    (nonce, epoch) = engine.query(
        f"SELECT {d.ident('nonce').text}, {d.ident('epoch').text} FROM {ledger} "
        f"WHERE {d.ident('refresh').text} = (SELECT MAX({d.ident('refresh').text}) FROM {ledger} "
        f"WHERE {d.ident('target').text} = {d.string(r.target_name).text})"
    )[0]
    assert release_rows(engine, r, int(epoch), nonce) == stored, "drawn for its ledger nonce"
    return stored


RETAIL_SCHEMAS = ("raw", "anon", "analytics", "privacy")


def fresh_retail_schemas(engine) -> None:  # type: ignore[no-untyped-def]
    """Live engines are shared by the tests of a worker: a test that loads the retail example
    drops what another one left in its schemas first."""
    ident = dialect.get(engine.dialect).ident
    for schema in RETAIL_SCHEMAS:
        engine.execute(f"DROP SCHEMA IF EXISTS {ident(schema).text} CASCADE")
