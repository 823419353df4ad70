"""PostgreSQL through psycopg: a DSN or a postgresql:// URL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.common import SessionSettings

DIALECT = "postgres"


class PostgresEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self, dsn: str):
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)

    def placeholder(self) -> Sql:
        return Sql("%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        # without parameters the text is sent as is: a '%' in a literal needs no escaping
        self.conn.execute(sql, list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql, list(params) if params else None)
        return cur.fetchall()

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (relation[-2], relation[-1]),
        )
        return [(r[0], r[1]) for r in rows]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Append rows to an existing table with COPY (values adapted by psycopg)."""
        from psycopg import sql

        target = sql.Identifier(*relation)
        with self.conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self.conn.close()
