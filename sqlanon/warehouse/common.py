"""Behaviour shared by engines that take SQL statements for everything."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SessionSettings:
    """Session settings through the dialect's own statements: the time zone (conformance
    cases read views under other time zones to show that no result depends on it) and the
    epoch a release refresh reads (docs/dp.md)."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def _set(self, statement: str, value: object) -> None:
        from sqlanon.sql import dialect

        d = dialect.get(self.dialect)
        literal = d.string(value) if isinstance(value, str) else d.number(value)  # type: ignore[arg-type]
        self.execute(d.statement(statement, literal).text)

    def set_time_zone(self, tz: str) -> None:
        self._set("set_time_zone", tz)

    def set_epoch(self, epoch: int) -> None:
        self._set("set_epoch", epoch)


# where sqlanon's own tables (the deploy audit, the monitor's history) live when the policy
# declares no key relation to sit beside
DEFAULT_SCHEMA = "privacy"


def append_only_table(
    d: Any, table: tuple[str, ...], columns: Sequence[tuple[str, str]]
) -> list[str]:
    """The statements creating an append-only record if it is missing — its schema, then the
    table keyed by its first column — for the deploy audit and the monitor history."""
    out = []
    if len(table) > 1:
        out.append(d.statement("create_schema", d.relation(table[:-1])).text)
    names = [d.ident(n) for n, _ in columns]
    kinds = tuple(t for _, t in columns)
    out.append(d.statement("create_ledger", d.relation(table), names, column_types=kinds).text)
    return out


def missing_columns(
    engine: Any, d: Any, table: tuple[str, ...], columns: Sequence[tuple[str, str]]
) -> list[str]:
    """ALTER statements adding the columns a record created by an earlier sqlanon lacks (the
    audit table gained `lookup_tables`): its rows stay, the new column is NULL in them, and
    the reader of the record treats NULL as empty. Nothing when the engine cannot list the
    table's columns."""
    try:
        live = {name.lower() for name, _ in engine.columns(table)}
    except Exception:  # no catalog reader: the record is read as it is
        return []
    if not live:
        return []
    return [
        d.statement("add_column", d.relation(table), d.ident(name), type=kind).text
        for name, kind in columns
        if d.stored_name(name).lower() not in live and name.lower() not in live
    ]
