"""A monitor run for the terminal and as JSON: what got worse since the previous run, and
the figures beside their previous values."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from sqlanon.measure.monitor import Run
from sqlanon.report import numbers


def render(console: Console, result: Run, table: str) -> None:
    before = result.previous or {}
    t = Table(title=f"monitor run {result.run}", title_justify="left")
    for col in ("figure", "previous run", "this run"):
        t.add_column(col, overflow="fold")
    for f in result.figures:
        t.add_row(f.name, _cell(before.get(f.name, "")), _cell(f.value))
    console.print(t)
    if result.previous is None:
        console.print(f"first run: the baseline, stored in {table}", markup=False)
    for change in result.changes:
        console.print(f"changed: {change}", markup=False)
    if result.previous is not None and result.ok:
        console.print(f"nothing got worse since run {result.run - 1}", markup=False)


def _cell(x: Any) -> str:
    if isinstance(x, float):
        return numbers.figure(x)
    if isinstance(x, list):
        return "; ".join(x) or "none"
    return "—" if x is None else str(x)


def to_json(result: Run) -> str:
    doc = {
        "run": result.run,
        "figures": {f.name: f.value for f in result.figures},
        "previous": result.previous,
        "changes": list(result.changes),
        "ok": result.ok,
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
