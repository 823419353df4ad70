"""How `sqlanon tune` shows its result: the best levels, the other minimal solutions, and the
policy change as a unified diff."""

from __future__ import annotations

import difflib
import json

from rich.console import Console
from rich.table import Table

from sqlanon.measure.tune import Goal, Node, TuneResult
from sqlanon.plan.model import to_jsonable
from sqlanon.report import numbers


def _node_json(result: TuneResult, node: Node) -> dict[str, object]:
    return {
        "levels": {d.column: lvl for d, lvl in zip(result.dimensions, node.levels, strict=True)},
        "rows": node.rows,
        "suppressed": node.suppressed,
        "classes": node.classes,
        "k": node.k,
        "l": node.l,
        "t": node.t,
        "precision_loss": node.precision_loss,
        "discernibility": node.discernibility,
        "meets_goal": node.meets_all,
    }


def result_json(result: TuneResult, goal: Goal) -> str:
    doc = {
        "view": result.view,
        "goal": {
            "k": goal.k,
            "max_suppression": to_jsonable(goal.max_suppression),
            "l": goal.l,
            "t": to_jsonable(goal.t),
            "sensitive": goal.sensitive,
        },
        "dimensions": [
            {"column": d.column, "hierarchy": d.hierarchy_file, "depth": d.depth}
            for d in result.dimensions
        ],
        "lattice_size": result.lattice_size,
        "evaluated": result.evaluated,
        "minimal_count": result.minimal_count,
        "best": None if result.best is None else _node_json(result, result.best),
        "minimal": [_node_json(result, n) for n in result.minimal],
    }
    return json.dumps(doc, indent=2) + "\n"


def print_result(
    console: Console,
    result: TuneResult,
    goal: Goal,
    policy_file: str,
    original: str | None,
    patched: str | None,
    written: bool,
) -> None:
    wanted = [
        f"k={goal.k}",
        f"suppression ≤ {numbers.parameter(float(goal.max_suppression) * 100)} %",
    ]
    if goal.l is not None:
        wanted.append(f"l={goal.l} for {goal.sensitive}")
    if goal.t is not None:
        wanted.append(f"t≤{goal.t} for {goal.sensitive}")
    console.print(
        f"{result.view}: lattice of {result.lattice_size} level combinations, "
        f"{result.evaluated} evaluated by query; goal {', '.join(wanted)}",
        markup=False,
    )
    t = Table(
        title="least-generalized solutions (k met, nothing below them meets it)",
        title_justify="left",
    )
    for d in result.dimensions:
        t.add_column(d.column, justify="right")
    for col in ("suppressed", "classes", "k", "l", "precision loss", ""):
        t.add_column(col, justify="right")
    rows = list(result.minimal)
    if result.best is not None and result.best not in rows:
        rows.insert(0, result.best)
    for n in rows:
        mark = "[bold green]chosen[/]" if n == result.best else ""
        t.add_row(
            *(str(lvl) for lvl in n.levels),
            f"{numbers.count(n.suppressed)} ({numbers.share(n.suppressed_share)})",
            numbers.count(n.classes),
            "—" if n.k is None else str(n.k),
            "—" if n.l is None else str(n.l),
            numbers.fixed(n.precision_loss, 3),
            mark,
        )
    console.print(t)
    if result.minimal_count > len(result.minimal):
        console.print(
            f"({result.minimal_count - len(result.minimal)} more minimal solutions "
            "with more loss not shown)",
            markup=False,
        )
    if result.best is None:
        console.print(
            "no level combination meets the goal: relax it (a higher suppression "
            "limit, a smaller k) or add hierarchy levels",
            markup=False,
        )
        return
    if original is None or patched is None or original == patched:
        console.print(f"{policy_file} already has these levels", markup=False)
        return
    diff = difflib.unified_diff(
        original.splitlines(keepends=True),
        patched.splitlines(keepends=True),
        f"a/{policy_file}",
        f"b/{policy_file}",
    )
    console.print("".join(diff), markup=False, highlight=False, end="", soft_wrap=True)
    if written:
        console.print(f"wrote {policy_file}", markup=False)
    else:
        console.print("(not written: pass --write to apply this change)", markup=False)
