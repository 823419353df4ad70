"""Behaviour shared by engines that take SQL statements for everything."""

from __future__ import annotations


class SessionTimeZone:
    """Sets the session time zone with the dialect's own statement (conformance cases read
    views under other time zones to show that no result depends on it)."""

    dialect: str

    def execute(self, sql: str, params: object = ()) -> None:
        raise NotImplementedError

    def set_time_zone(self, tz: str) -> None:
        from .. import dialect

        d = dialect.get(self.dialect)
        self.execute(d.statement("set_time_zone", d.string(tz)).text)
