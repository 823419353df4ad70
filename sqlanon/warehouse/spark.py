"""Spark SQL on a local SparkSession (pyspark, `local[2]`, small memory, no UI), for tests.

One session per process: starting the JVM takes seconds. Each engine object works in a
warehouse folder of its own and drops what it created when closed, so tests sharing the
session do not see each other's tables.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.common import SessionSettings

DIALECT = "spark"
_SESSION: Any = None
_WAREHOUSE: str | None = None


def _session() -> Any:
    global _SESSION, _WAREHOUSE
    if _SESSION is None:
        from pyspark.sql import SparkSession

        _WAREHOUSE = tempfile.mkdtemp(prefix="sqlanon-spark-")
        _SESSION = (
            SparkSession.builder.master("local[2]")
            .appName("sqlanon")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "1g")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.warehouse.dir", _WAREHOUSE)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "true")
            .getOrCreate()
        )
        _SESSION.sparkContext.setLogLevel("OFF")
    return _SESSION


class SparkEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self) -> None:
        self.spark = _session()
        self._before = self._schemas()

    def set_time_zone(self, tz: str) -> None:
        # `SET TIME ZONE 'x'` is Spark SQL, but sqlglot reads it as an opaque command
        self.spark.conf.set("spark.sql.session.timeZone", tz)

    def set_epoch(self, epoch: int) -> None:
        # Spark's session variables (docs/dp.md); sqlglot cannot parse DECLARE ... VARIABLE
        self.spark.sql(
            f"DECLARE OR REPLACE VARIABLE sqlanon_epoch BIGINT DEFAULT {int(epoch)}"
        ).collect()

    def placeholder(self) -> Sql:
        return Sql("?")  # positional parameters (Spark 3.5+)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.lstrip().upper().startswith("DELETE FROM"):
            self._delete(sql, params)
            return
        self.spark.sql(sql, args=list(params) if params else None).collect()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from pyspark.sql import functions as F
        from pyspark.sql.types import TimestampType

        frame = self.spark.sql(sql, args=list(params) if params else None)
        # instants are read as microseconds (pyspark's own conversion goes through the local
        # time of the Python process and fails near year 9999)
        instants = [isinstance(f.dataType, TimestampType) for f in frame.schema]
        if any(instants):
            frame = frame.select(
                *(
                    F.unix_micros(F.col(f"`{n}`")) if ts else F.col(f"`{n}`")
                    for n, ts in zip(frame.columns, instants, strict=True)
                )
            )
        return [
            tuple(_to_python(v, instant) for v, instant in zip(r, instants, strict=True))
            for r in frame.collect()
        ]

    def _delete(self, sql: str, params: Sequence[Any]) -> None:
        """Spark's built-in (parquet) tables have no DELETE; Delta and Iceberg tables do. The
        runner carries it out by rewriting the table without the matching rows."""
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

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        from sqlanon.sql import dialect

        name = dialect.get(DIALECT).relation(relation).text
        return [(f.name, f.dataType.simpleString()) for f in self.spark.table(name).schema]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        from sqlanon.sql import dialect

        name = dialect.get(DIALECT).relation(relation).text
        schema = self.spark.table(name).schema
        frame = self.spark.createDataFrame([list(r) for r in rows], schema)
        frame.write.insertInto(name)

    def _schemas(self) -> set[str]:
        return {r[0] for r in self.spark.sql("SHOW SCHEMAS").collect()}

    def close(self) -> None:
        """Drop the schemas this engine created (the session outlives it)."""
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        for schema in sorted(self._schemas() - self._before):
            self.spark.sql(f"DROP SCHEMA IF EXISTS {d.ident(schema).text} CASCADE").collect()


def _to_python(v: Any, instant: bool) -> Any:
    """An instant (read as microseconds) becomes an aware UTC datetime, like the other
    engines' instants."""
    if isinstance(v, bytearray):
        return bytes(v)
    if instant and v is not None:
        return _EPOCH + dt.timedelta(microseconds=v)
    return v


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def stop() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None
        if _WAREHOUSE:
            shutil.rmtree(_WAREHOUSE, ignore_errors=True)
