"""Values a view's column expressions share, computed once in the view's step CTEs.

A transform that uses one value several times (a masked e-mail reads its canonical text six
times, an age ladder the age once per bucket) names it with `LowerContext.let`. In a view the
value becomes a column of a step CTE (`SELECT *, <value> AS "email_text"`), and the column
expressions refer to it by name: the reviewer reads the age formula once, the engine computes
it once. A value that uses another shared value goes one step later. Identical values (two
columns masking the same source) are one column. Names never collide with the view's input
columns, key columns or outputs: quoted names that differ only in case are one name on
DuckDB, so names are compared case-insensitively.

Every `add` is logged (its arguments and what it returned) and can be undone back to a mark:
a column lowered before in another view (sqlanon/sql/memo.py) is reused by replaying its adds
here, and undone if one of them comes out differently in this view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlanon.sql.shapes import Sql

if TYPE_CHECKING:
    from sqlanon.sql.dialect import Dialect


MAX_NAME_BYTES = 48  # PostgreSQL truncates names beyond 63 bytes, and may then collide


class Names:
    """Unique column names within one query, case-insensitively."""

    def __init__(self, taken: list[str] | tuple[str, ...] = ()) -> None:
        self._taken = {n.lower() for n in taken}

    def take(self, hint: str) -> str:
        if len(hint.encode("utf-8")) > MAX_NAME_BYTES:
            hint = "_sqlanon_value"
        name, n = hint, 1
        while name.lower() in self._taken:
            n += 1
            name = f"{hint}_{n}"
        self._taken.add(name.lower())
        return name

    def release(self, name: str) -> None:
        """Give back a name taken last (undoing a shared value)."""
        self._taken.discard(name.lower())


class Shared:
    def __init__(self, d: Dialect, names: Names) -> None:
        self.d = d
        self.names = names
        self._by_text: dict[str, Sql] = {}
        self._level: dict[str, int] = {}  # a shared value's reference text → its step (1, 2 …)
        self.steps: list[list[tuple[Sql, Sql]]] = []  # per step: (value, name)
        self.log: list[tuple[Sql, str, Sql]] = []  # every add: (value, hint, what it returned)
        # per add that named a new value: (its text, its name, the name taken, its step)
        self._undo: list[tuple[str, Sql, str, int]] = []

    def add(self, value: Sql, hint: str) -> Sql:
        ref = self._add(value, hint)
        self.log.append((value, hint, ref))
        return ref

    def mark(self) -> tuple[int, int]:
        return len(self.log), len(self._undo)

    def undo(self, mark: tuple[int, int]) -> None:
        """Back to the state at `mark`: the values named since then are forgotten."""
        del self.log[mark[0] :]
        while len(self._undo) > mark[1]:
            text, ref, name, level = self._undo.pop()
            del self._by_text[text], self._level[ref.text]
            self.names.release(name)
            self.steps[level - 1].pop()
            while self.steps and not self.steps[-1]:
                self.steps.pop()

    def _add(self, value: Sql, hint: str) -> Sql:
        if value.text in self._level or value.text in self._by_text:
            return self._by_text.get(value.text, value)
        if not any(ch in value.text for ch in " ("):  # a name or a literal: nothing to share
            return value
        name = self.names.take(hint)
        ref = self.d.ident(name)
        self._by_text[value.text] = ref
        # a reference is a quoted name, found verbatim in any value that uses it (a string
        # literal holding the same text only moves the value one step later: harmless)
        level = 1 + max((lv for r, lv in self._level.items() if r in value.text), default=0)
        self._level[ref.text] = level
        while len(self.steps) < level:
            self.steps.append([])
        self.steps[level - 1].append((value, ref))
        self._undo.append((value.text, ref, name, level))
        return ref
