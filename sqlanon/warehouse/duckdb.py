"""DuckDB, embedded: the engine of `sqlanon demo` and the reference engine in tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.common import SessionSettings

DIALECT = "duckdb"


class DuckDBEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self, database: str = ":memory:"):
        self.conn = duckdb.connect(database)

    def placeholder(self) -> Sql:
        return Sql("?")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, list(params)).fetchall()

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        """(name, type) of a relation's columns, in order."""
        schema, table = relation[-2], relation[-1]
        rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (schema, table),
        )
        return [(r[0], r[1]) for r in rows]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Append rows to an existing table, in bulk through a temporary CSV file: every
        value quoted, NULL an unquoted empty field (so no text, not even `\\N`, reads as
        NULL)."""
        import datetime as dt
        import tempfile
        from pathlib import Path

        from sqlanon.sql import dialect

        def field(v: Any) -> str:
            if v is None:
                return ""
            text = v.isoformat() if isinstance(v, dt.date | dt.datetime) else str(v)
            return '"' + text.replace('"', '""') + '"'

        if not rows:  # an empty CSV reads as one column of nothing, not as no rows
            return
        d = dialect.get(DIALECT)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rows.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(",".join(field(v) for v in row) + "\n")
            self.execute(d.statement("copy_csv", d.relation(relation), d.string(str(path))).text)

    def close(self) -> None:
        self.conn.close()
