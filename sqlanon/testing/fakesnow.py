"""Snowflake's dialect, run by fakesnow: an emulator that transpiles Snowflake SQL to DuckDB.

It proves that the generated Snowflake SQL is accepted and, as far as fakesnow emulates
Snowflake's functions, computes the same results. It cannot prove Snowflake's own semantics
where fakesnow falls back on DuckDB's; docs/dialects.md lists those places and how the
spellings were checked against Snowflake's documentation instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.common import SessionSettings

DIALECT = "snowflake"
DATABASE = "SQLANON"


class FakesnowEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self) -> None:
        import fakesnow
        import snowflake.connector

        self._patch = fakesnow.patch()
        self._patch.__enter__()
        self.conn = snowflake.connector.connect(database=DATABASE, schema="PUBLIC")
        self._duck = self.conn._duck_conn  # type: ignore[attr-defined]  # fakesnow's DuckDB

    def placeholder(self) -> Sql:
        return Sql("%s")  # the connector's pyformat parameters

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.lstrip().upper().startswith("GRANT "):
            # fakesnow has no roles or GRANT; the statement was parsed as Snowflake SQL by
            # sqlanon's own checks, which is all that can be confirmed here
            return
        self.query(sql, params, fetch=False)

    def query(
        self, sql: str, params: Sequence[Any] = (), fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        sqlglot_log = logging.getLogger("sqlglot")
        level = sqlglot_log.level
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fakesnow's arrow-copy notice on every fetch
            # fakesnow's transpiler logs each Snowflake feature DuckDB lacks (SECURE, ...)
            sqlglot_log.setLevel(logging.ERROR)
            try:
                cur = self.conn.cursor()
                cur.execute(sql, tuple(params) if params else None)
                return list(cur.fetchall()) if fetch else []  # type: ignore[arg-type]
            finally:
                sqlglot_log.setLevel(level)

    def set_time_zone(self, tz: str) -> None:
        """fakesnow does not implement ALTER SESSION SET TIMEZONE: set it on DuckDB below."""
        self._duck.execute("SET TimeZone = ?", [tz])

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        rows = self._duck.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [DATABASE, relation[-2].upper(), relation[-1].upper()],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Bulk load through DuckDB directly (test data, not generated SQL)."""
        if not rows:
            return
        marks = ", ".join("?" * len(rows[0]))
        table = f'"{DATABASE}"."{relation[-2].upper()}"."{relation[-1].upper()}"'
        self._duck.executemany(f"INSERT INTO {table} VALUES ({marks})", [list(r) for r in rows])

    def close(self) -> None:
        self.conn.close()
        self._patch.__exit__(None, None, None)
