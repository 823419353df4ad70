"""The warehouse layer: one connection protocol (`Engine`) and the real connections — DuckDB
(embedded), PostgreSQL (psycopg), Spark (a SparkSession) — and what runs over them: apply,
refresh budgets, keys. Test engines and emulators live in sqlanon.testing, never here."""

from __future__ import annotations

from typing import Any, Protocol

from sqlanon.plan.model import Source
from sqlanon.sql.shapes import Sql

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


def live_types(engine: Any, source: Source) -> dict[str, str]:
    """A source's columns as the engine types them, by lower-cased name (PostgreSQL folds
    unquoted names); empty when the engine has no catalog reader or the relation is missing
    (a query's columns whose type sqlglot cannot infer are left out)."""
    from sqlanon.warehouse.sources import source_columns

    try:
        return {name.lower(): t for name, t in source_columns(engine, source) if t}
    except Exception:  # an engine without a catalog reader: callers fall back to the plan
        return {}
