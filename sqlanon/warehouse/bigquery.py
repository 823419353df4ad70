"""BigQuery through google-cloud-bigquery: the product's connection (`--db bigquery://…`).

Every statement runs as a query job in one BigQuery session, so a refresh's BEGIN TRANSACTION
… COMMIT TRANSACTION, `SET @@time_zone` and the epoch (the query parameter @sqlanon_epoch the
release SQL reads) hold across the statements of a command, as they do on the other engines.
sqlanon writes `?` placeholders; BigQuery cannot mix positional parameters with the named
@sqlanon_epoch, so they are renamed @p0, @p1, … (found as tokens of BigQuery's tokenizer,
never inside a literal), and each value is typed from its Python type.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot.tokenizer_core import TokenType

from sqlanon.sql.shapes import Sql

DIALECT = "bigquery"
EPOCH_PARAMETER = "sqlanon_epoch"
ROWS_PER_INSERT = 500  # a query job per chunk: BigQuery takes at most 10,000 parameters


def named_parameters(sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`sql` with its `?` placeholders renamed @p0, @p1, …, and the values by name."""
    if not params:
        return sql, {}
    tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql)
    spots = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER]
    if len(spots) != len(params):
        raise ValueError(f"{len(params)} parameters for {len(spots)} placeholders")
    out, last = [], 0
    for i, tok in enumerate(spots):
        out.append(sql[last : tok.start])
        out.append(f"@p{i}")
        last = tok.end + 1
    out.append(sql[last:])
    return "".join(out), {f"p{i}": v for i, v in enumerate(params)}


def parameter_type(v: Any) -> str:
    """The BigQuery type of a value sqlanon passes (keys, audit rows, source rows in tests)."""
    if isinstance(v, bool):
        return "BOOL"
    if isinstance(v, int):
        return "INT64"
    if isinstance(v, float):
        return "FLOAT64"
    if isinstance(v, Decimal):
        return "NUMERIC"
    if isinstance(v, bytes):
        return "BYTES"
    if isinstance(v, dt.datetime):
        return "TIMESTAMP" if v.tzinfo is not None else "DATETIME"
    if isinstance(v, dt.date):
        return "DATE"
    return "STRING"  # str, and NULL (an untyped NULL binds as STRING)


class BigQueryEngine:
    dialect = DIALECT

    def __init__(self, client: Any) -> None:
        """`client`: a google.cloud.bigquery.Client (its project is the default project)."""
        self.client = client
        self.session_id: str | None = None
        self.session_parameters: dict[str, Any] = {}

    def placeholder(self) -> Sql:
        return Sql("?")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params, fetch=False)

    def query(
        self, sql: str, params: Sequence[Any] = (), fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        from google.cloud import bigquery

        text, named = named_parameters(sql, params)
        values = {**self.session_parameters, **named}
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(name, parameter_type(v), v)
                for name, v in values.items()
            ],
            create_session=self.session_id is None,
        )
        if self.session_id is not None:
            config.connection_properties = [
                bigquery.ConnectionProperty("session_id", self.session_id)
            ]
        job = self.client.query(text, job_config=config)
        rows = job.result()
        if self.session_id is None:
            info = getattr(job, "session_info", None)
            self.session_id = getattr(info, "session_id", None)
        return [tuple(r.values()) for r in rows] if fetch else []

    def set_time_zone(self, tz: str) -> None:
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        self.execute(d.statement("set_time_zone", d.string(tz)).text)

    def set_epoch(self, epoch: int) -> None:
        """The release SQL reads the epoch from the query parameter @sqlanon_epoch."""
        self.session_parameters[EPOCH_PARAMETER] = epoch

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        schema = d.relation((*relation[:-1], "INFORMATION_SCHEMA", "COLUMNS")).text
        rows = self.query(
            f"SELECT column_name, data_type FROM {schema} WHERE table_name = ? "
            "ORDER BY ordinal_position",
            (relation[-1],),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """INSERT … VALUES with bound parameters, ROWS_PER_INSERT rows per query job."""
        from sqlanon.sql import dialect

        d = dialect.get(DIALECT)
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            marks = ", ".join("(" + ", ".join("?" for _ in row) + ")" for row in chunk)
            values = [v for row in chunk for v in row]
            self.execute(f"INSERT INTO {d.relation(relation).text} VALUES {marks}", values)

    def close(self) -> None:
        if self.session_id is not None:
            with contextlib.suppress(Exception):  # else the session expires by itself
                self.execute("CALL BQ.ABORT_SESSION()")
        self.client.close()
