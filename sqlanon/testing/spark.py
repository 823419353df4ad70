"""Spark for tests: one local session per process (starting the JVM takes seconds), small
and quiet, in a temporary warehouse folder. Each engine drops the schemas it created when
closed, so tests sharing the session do not see each other's tables; DELETE on the built-in
parquet tables is carried out by rewriting the table (production tables are Delta or
Iceberg, which have DELETE)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from sqlanon.warehouse.spark import DIALECT, SparkEngine, local_session

_SESSION: Any = None
_WAREHOUSE: str | None = None


def _session() -> Any:
    global _SESSION, _WAREHOUSE
    if _SESSION is None:
        _WAREHOUSE = tempfile.mkdtemp(prefix="sqlanon-spark-")
        _SESSION = local_session(
            "local[2]",
            **{
                "spark.ui.enabled": "false",
                "spark.driver.memory": "1g",
                "spark.sql.shuffle.partitions": "2",
                "spark.sql.warehouse.dir": _WAREHOUSE,
            },
        )
        _SESSION.sparkContext.setLogLevel("OFF")
    return _SESSION


class LocalSparkEngine(SparkEngine):
    def __init__(self) -> None:
        super().__init__(_session())
        self._before = self._schemas()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.lstrip().upper().startswith("DELETE FROM"):
            self._delete(sql, params)
            return
        super().execute(sql, params)

    def _delete(self, sql: str, params: Sequence[Any]) -> None:
        """Rewrite the table without the matching rows."""
        import sqlglot

        tree = sqlglot.parse_one(sql, read="spark")
        table = tree.this.sql(dialect="spark")
        where = tree.args["where"].this.sql(dialect="spark")
        kept = self.spark.sql(
            f"SELECT * FROM {table} WHERE NOT coalesce({where}, FALSE)",
            args=list(params) if params else None,
        )
        rows, schema = kept.collect(), kept.schema
        self.spark.createDataFrame(rows, schema).write.insertInto(table, overwrite=True)

    def _schemas(self) -> set[str]:
        return {r[0] for r in self.spark.sql("SHOW SCHEMAS").collect()}

    def close(self) -> None:
        """Drop the schemas this engine created (the session outlives it)."""
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        for schema in sorted(self._schemas() - self._before):
            self.spark.sql(f"DROP SCHEMA IF EXISTS {d.ident(schema).text} CASCADE").collect()


def stop() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None
        if _WAREHOUSE:
            shutil.rmtree(_WAREHOUSE, ignore_errors=True)
