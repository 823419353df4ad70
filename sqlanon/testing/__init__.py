"""Engines for tests and `sqlanon conformance`: emulators (ZetaSQL for BigQuery, fakesnow for
Snowflake), a throwaway PostgreSQL server and a local Spark session, started for the occasion.

Product code never imports this package (ruff's banned-api rule in pyproject.toml); it needs
the test extra: pip install 'sqlanon[test]'.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlanon.warehouse import ENGINES, EngineUnavailable

__all__ = ["ENGINES", "EngineUnavailable", "session"]


def _closing(engine: Any) -> Iterator[Any]:
    try:
        yield engine
    finally:
        engine.close()


def _need(*modules: str, what: str = "") -> None:
    """Each module importable, or EngineUnavailable naming the missing one and the extra."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise EngineUnavailable(
                f"the {module} package is not installed{what}: pip install 'sqlanon[test]'"
            ) from None


@contextmanager
def _duckdb() -> Iterator[Any]:
    from sqlanon.warehouse.duckdb import DuckDBEngine

    yield from _closing(DuckDBEngine())


@contextmanager
def _zetasql() -> Iterator[Any]:
    _need("zetasql")
    from sqlanon.testing.zetasql import ZetaSQLEngine

    yield from _closing(ZetaSQLEngine())


@contextmanager
def _fakesnow() -> Iterator[Any]:
    _need("fakesnow", "snowflake.connector", what=" (the Snowflake emulator)")
    from sqlanon.testing.fakesnow import FakesnowEngine

    yield from _closing(FakesnowEngine())


@contextmanager
def _spark() -> Iterator[Any]:
    _need("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EngineUnavailable("no Java runtime (java on PATH or JAVA_HOME) for Spark")
    from sqlanon.testing.spark import LocalSparkEngine

    yield from _closing(LocalSparkEngine())


@contextmanager
def _postgres() -> Iterator[Any]:
    _need("psycopg")
    from sqlanon.testing.postgres_server import ServerUnavailable, private_server
    from sqlanon.warehouse.postgres import PostgresEngine

    dsn = os.environ.get("SQLANON_PG_DSN")
    if dsn:
        engine = PostgresEngine(dsn)
        try:
            yield engine
        finally:
            engine.close()
        return
    try:
        server = private_server()
        dsn = server.__enter__()
    except ServerUnavailable as exc:
        raise EngineUnavailable(str(exc)) from None
    try:
        engine = PostgresEngine(dsn)
        try:
            yield engine
        finally:
            engine.close()
    finally:
        server.__exit__(None, None, None)


# the runners a dialect.yml may name as its `engine:`: a new dialect on an existing engine
# (a DuckDB variant, say) names one of these; a new engine adds one function here
RUNNERS: dict[str, Callable[[], AbstractContextManager[Any]]] = {
    "duckdb": _duckdb,
    "postgres": _postgres,
    "zetasql": _zetasql,
    "fakesnow": _fakesnow,
    "spark": _spark,
}


@contextmanager
def session(name: str) -> Iterator[Any]:
    """An engine for dialect `name` — the runner its dialect.yml names as `engine:` — started
    for the occasion and closed afterwards."""
    from sqlanon.sql import dialect

    try:
        runner = RUNNERS[dialect.get(name).engine]
    except (KeyError, FileNotFoundError, dialect.DialectError):
        raise EngineUnavailable(f"no engine runner for '{name}'") from None
    with runner() as engine:
        yield engine
