"""Spark SQL through a SparkSession (pyspark; the `spark` extra): a local session
(`spark://local`), a Spark Connect server (`sc://host:port`), or a session the caller made.

Release refreshes delete an epoch's rows before writing them, so release tables must support
DELETE (Delta Lake, Iceberg); Spark's built-in parquet tables do not (docs/deploy.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.common import SessionSettings

DIALECT = "spark"


def local_session(master: str = "local[*]", **conf: str) -> Any:
    """A local SparkSession with the settings the generated SQL relies on: UTC session time
    (only for reading; no result depends on it) and ANSI mode (errors, not NULLs, on bad
    casts: the SQL's own checks expect them)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("sqlanon")
    settings = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true", **conf}
    for name, value in settings.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


def connect_session(url: str) -> Any:
    """A session on a Spark Connect server (`sc://host:port`)."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(url).getOrCreate()
    session.conf.set("spark.sql.ansi.enabled", "true")
    return session


class SparkEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self, session: Any = None) -> None:
        self.spark = session if session is not None else local_session()

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

    def close(self) -> None:
        """The session belongs to the process (or to whoever made it): it stays up."""


def _to_python(v: Any, instant: bool) -> Any:
    """An instant (read as microseconds) becomes an aware UTC datetime, like the other
    engines' instants."""
    if isinstance(v, bytearray):
        return bytes(v)
    if instant and v is not None:
        return _EPOCH + dt.timedelta(microseconds=v)
    return v


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
