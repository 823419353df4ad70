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
        t = Table(
            title=f"{source_label(r.source)} → {'.'.join(r.target)}  "
            f"[dim]({r.policy_file}, release {r.name}; by "
            f"{', '.join(c.output for c in r.group_by) or 'nothing'})[/]",
            title_justify="left",
        )
        for col in columns:
            t.add_column(col, overflow="fold", no_wrap=col in ("measure", "epsilon"))
        for row in release_rows(r):
            t.add_row(*(row[c] for c in columns))
        out.print(t)
        for rule in release_rules(r):
            out.print(f"  • {rule}", markup=False)
        out.print()
    marginal_columns: tuple[str, ...] = ("marginal", "cells", "epsilon", "sensitivity")
    marginal_columns += ("noise scale", "95 % interval")
    for syn in plan.synthetic:
        t = Table(
            title=f"{source_label(syn.source)} → {syn.target_name}  "
            f"[dim]({syn.policy_file}, synthetic table {syn.name})[/]",
            title_justify="left",
        )
        for col in marginal_columns:
            t.add_column(col, overflow="fold", no_wrap=col in ("cells", "epsilon"))
        for row in synthetic_rows(syn):
            t.add_row(*(row[c] for c in marginal_columns))
        out.print(t)
        for rule in synthetic_rules(syn):
            out.print(f"  • {rule}", markup=False)
        out.print()
    for line in budget_lines(plan):
        out.print(line, markup=False)
