"""Running generated SQL on real engines: `sqlanon demo`/`apply`/`conformance`, key loading and
the test suite. One module per engine; `session(name)` opens one by dialect name."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ..sqlgen import Sql

ENGINES = ("duckdb", "postgres", "bigquery", "snowflake", "spark")


class EngineUnavailable(RuntimeError):
    """The engine cannot run here; the message says why (a missing binary or package)."""


class Engine(Protocol):
    dialect: str

    def placeholder(self) -> Sql: ...
    def execute(self, sql: str, params: Any = ()) -> None: ...
    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]: ...
    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]: ...
    def set_time_zone(self, tz: str) -> None: ...
    def set_epoch(self, epoch: int) -> None: ...
    def close(self) -> None: ...


def live_types(engine: Any, relation: tuple[str, ...]) -> dict[str, str]:
    """A relation's columns as the engine types them, by lower-cased name (PostgreSQL folds
    unquoted names); empty when the engine has no catalog reader or the relation is missing."""
    try:
        return {name.lower(): t for name, t in engine.columns(relation)}
    except Exception:  # an engine without a catalog reader: callers fall back to the plan
        return {}


@contextmanager
def session(name: str) -> Iterator[Any]:
    """An engine for dialect `name`, started for the occasion and closed afterwards."""
    if name == "duckdb":
        from .duckdb import DuckDBEngine

        engine: Any = DuckDBEngine()
        try:
            yield engine
        finally:
            engine.close()
    elif name == "postgres":
        with _postgres() as engine:
            yield engine
    elif name == "bigquery":
        try:
            import zetasql  # noqa: F401
        except ImportError:
            raise EngineUnavailable(
                "the zetasql package is not installed: pip install 'sqlanon[test]'"
            ) from None
        from .zetasql import ZetaSQLEngine

        engine = ZetaSQLEngine()
        try:
            yield engine
        finally:
            engine.close()
    elif name == "snowflake":
        try:
            import fakesnow  # noqa: F401
            import snowflake.connector  # noqa: F401
        except ImportError as exc:
            raise EngineUnavailable(
                f"{exc.name} is not installed (the Snowflake emulator): pip install 'sqlanon[test]'"
            ) from None
        from .fakesnow import FakesnowEngine

        engine = FakesnowEngine()
        try:
            yield engine
        finally:
            engine.close()
    elif name == "spark":
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise EngineUnavailable(
                "the pyspark package is not installed: pip install 'sqlanon[test]'"
            ) from None
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise EngineUnavailable("no Java runtime (java on PATH or JAVA_HOME) for Spark")
        from .spark import SparkEngine

        engine = SparkEngine()
        try:
            yield engine
        finally:
            engine.close()
    else:
        raise EngineUnavailable(f"no engine runner for '{name}'")


@contextmanager
def _postgres() -> Iterator[Any]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise EngineUnavailable(
            "the psycopg package is not installed: pip install 'psycopg[binary]'"
        ) from None
    from .postgres import PostgresEngine, ServerUnavailable, private_server

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
