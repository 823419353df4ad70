"""Snowflake through snowflake-connector-python (the `snowflake` extra).

Tests run this very class against fakesnow, which patches the connector's `connect`: the
client path (parameters, cursors, fetches) is the real one; only the server is emulated
(sqlanon/testing/fakesnow.py says what the emulator cannot show)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.common import SessionSettings

DIALECT = "snowflake"


class SnowflakeEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self, conn: Any = None, **connect_args: Any) -> None:
        """A connection made here from the connector's arguments, or one the caller made."""
        if conn is None:
            import snowflake.connector

            conn = snowflake.connector.connect(**connect_args)
        self.conn = conn

    def placeholder(self) -> Sql:
        return Sql("%s")  # the connector's pyformat parameters

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params, fetch=False)

    def query(
        self, sql: str, params: Sequence[Any] = (), fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, tuple(params) if params else None)
            return [tuple(r) for r in cur.fetchall()] if fetch else []
        finally:
            cur.close()

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        """The dialect stores names upper-case (unquoted Snowflake names): matched as such."""
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        schema = (*relation[:-2], "information_schema")
        rows = self.query(
            f"SELECT column_name, data_type FROM {d.relation(schema).text}.COLUMNS "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (d.stored_name(relation[-2]), d.stored_name(relation[-1])),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        marks = ", ".join(["%s"] * len(rows[0]))
        cur = self.conn.cursor()
        try:
            cur.executemany(f"INSERT INTO {d.relation(relation).text} VALUES ({marks})", rows)
        finally:
            cur.close()

    def close(self) -> None:
        self.conn.close()
