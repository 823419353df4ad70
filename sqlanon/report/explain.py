"""`sqlanon explain` in the terminal: per view its columns and rules, per release its
measures and noise, then the budget."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sqlanon.plan.model import Plan, source_label
from sqlanon.review.explain import (
    budget_lines,
    column_rows,
    release_rows,
    release_rules,
    synthetic_rows,
    synthetic_rules,
    view_rules,
)


def print_plan(out: Console, plan: Plan) -> None:
    for view in plan.views:
        t = Table(
            title=f"{source_label(view.source)} → {'.'.join(view.target)}  "
            f"[dim]({view.policy_file}, table {view.name})[/]",
            title_justify="left",
            show_lines=False,
        )
        for col in ("column", "source", "transform", "parameters", "class", "type"):
            t.add_column(col, overflow="fold", no_wrap=col in ("transform", "class"))
        for row in column_rows(view):
            t.add_row(
                *(row[c] for c in ("column", "source", "transform", "parameters", "class", "type"))
            )
        out.print(t)
        for rule in view_rules(view):
            out.print(f"  • {rule}", markup=False)
        out.print()
    columns = ("measure", "aggregate", "epsilon", "sensitivity", "noise scale", "95 % interval")
    for r in plan.releases:
        title = (
            f"{source_label(r.source)} → {'.'.join(r.target)}  "
            f"[dim]({r.policy_file}, release {r.name}; by "
            f"{', '.join(c.output for c in r.group_by) or 'nothing'})[/]"
        )
        _print_noised(
            out, title, columns, ("measure", "epsilon"), release_rows(r), release_rules(r)
        )
    marginal_columns = (
        "marginal",
        "cells",
        "epsilon",
        "sensitivity",
        "noise scale",
        "95 % interval",
    )
    for syn in plan.synthetic:
        title = (
            f"{source_label(syn.source)} → {syn.target_name}  "
            f"[dim]({syn.policy_file}, synthetic table {syn.name})[/]"
        )
        rows, rules = synthetic_rows(syn), synthetic_rules(syn)
        _print_noised(out, title, marginal_columns, ("cells", "epsilon"), rows, rules)
    for line in budget_lines(plan):
        out.print(line, markup=False)


def _print_noised(
    out: Console,
    title: str,
    columns: tuple[str, ...],
    no_wrap: tuple[str, ...],
    rows: list[dict[str, str]],
    rules: list[str],
) -> None:
    """A release's measures or a synthetic table's marginals: the noise of each, then the
    rules that hold for the object."""
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold", no_wrap=col in no_wrap)
    for row in rows:
        t.add_row(*(row[c] for c in columns))
    out.print(t)
    for rule in rules:
        out.print(f"  • {rule}", markup=False)
    out.print()
