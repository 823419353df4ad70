"""Columns lowered once per dialect and reused across a plan's views.

A warehouse's tables repeat their columns: the same `email` masked, the same `customer_id`
pseudonymized, the same audit dates truncated in table after table. A column's expression is a
pure function of the dialect, the column's plan step, the name it reads, the view's key pad
names and what each of its `LowerContext.let` calls returned — so a column lowered before in
another view is taken from here instead of lowered again, once its lets have been replayed into
this view's shared values (sqlanon/sql/shared.py) and each returned the same name as before.
Where one did not (a name taken in this view by another column), the replay is undone and the
column lowered afresh. A column that joined a lookup relation is never reused (its join
belongs to its view).

Output is byte-identical with and without the memo (tests/test_memo.py): it only saves the
time of lowering, most of a fresh compile of a large policy (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlanon.plan.model import ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.sql.shared import Shared
from sqlanon.transforms import REGISTRY, LowerContext

MAX_ENTRIES = 20_000  # about 10 MB of SQL text per dialect; beyond it columns are not kept
# a policy whose columns do not repeat pays the memo's keys for nothing (5-20 % of lowering,
# measured with every column of the compile_scale policy renamed per table): after this many
# columns with fewer than one in eight reused, the memo stands aside
TRIAL, MIN_SHARE = 4_000, 8


class ColumnMemo:
    """One dialect's lowered columns (a view query's column expressions, comment included)."""

    def __init__(self) -> None:
        # (name read, step, key pads) → (expression, the lets it made: (value, hint, returned))
        self._columns: dict[tuple[Any, ...], tuple[Sql, tuple[tuple[Sql, str, Sql], ...]]] = {}
        self.hits = 0
        self.looked = 0
        self.aside = False  # the policy's columns do not repeat: lowered without the memo

    def lower(
        self,
        ctx: LowerContext,
        shared: Shared,
        joins: Sequence[object],
        x: Sql,
        col: ColumnStep,
        pads: tuple[Any, ...],
        finish: Callable[[Sql], Sql],
    ) -> Sql:
        """`col`'s expression read from `x`, through `finish` (the view's column comment);
        `shared` is ctx's shared values and `joins` its lookup joins."""
        self.looked += 1
        if self.looked == TRIAL and self.hits * MIN_SHARE < TRIAL:
            self.aside = True
            self._columns.clear()
        if self.aside:
            return finish(REGISTRY[col.transform].lower(ctx, x, col))
        key = (x, col, pads)
        try:
            known = self._columns.get(key)
        except TypeError:  # a parameter value that cannot be a key: lowered, not kept
            return finish(REGISTRY[col.transform].lower(ctx, x, col))
        if known is not None:
            expr, lets = known
            mark = shared.mark()
            for value, hint, returned in lets:
                if shared.add(value, hint) != returned:
                    shared.undo(mark)
                    break
            else:
                self.hits += 1
                return expr
        start, joined = len(shared.log), len(joins)
        expr = finish(REGISTRY[col.transform].lower(ctx, x, col))
        if known is None and len(joins) == joined and len(self._columns) < MAX_ENTRIES:
            # the first lowering is kept: a view whose names differ (a rare collision) does
            # not replace it for the many views that will match it
            self._columns[key] = (expr, tuple(shared.log[start:]))
        return expr
