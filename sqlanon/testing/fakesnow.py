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

from sqlanon.warehouse.snowflake import SnowflakeEngine

DIALECT = "snowflake"
# not SQLANON: fakesnow (DuckDB) cannot tell a database from a schema of the same name,
# and deploy's audit table may live in a schema called sqlanon
DATABASE = "WAREHOUSE"
NOP = ["^GRANT "]  # statements fakesnow answers with success without running them


class FakesnowEngine(SnowflakeEngine):
    """The product's SnowflakeEngine on a fakesnow connection."""

    def __init__(self) -> None:
        from fakesnow.instance import FakeSnow

        # an emulated account of its own, connected to without patching the connector (tests
        # of `snowflake://` URLs patch it while this engine is open). fakesnow has no roles:
        # GRANT succeeds without effect (the statement was parsed as Snowflake SQL by
        # sqlanon's own checks, all that can be confirmed here).
        self._account = FakeSnow(nop_regexes=NOP)
        super().__init__(self._account.connect(DATABASE, "PUBLIC"))
        self._duck = self.conn._duck_conn  # fakesnow's DuckDB

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
                return super().query(sql, params, fetch)
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
        self._account.duck_conn.close()
