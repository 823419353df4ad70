"""`sqlanon budget` in the terminal: what a refresh spends, and what the ledger recorded."""

from __future__ import annotations

from rich.table import Table

from sqlanon.report.numbers import constant as number
from sqlanon.warehouse.budget import Planned, Spent


def planned_table(planned: list[Planned]) -> Table:
    t = Table(title="Per refresh (compiled)", title_justify="left")
    for col in ("policy", "release", "epsilon", "delta"):
        t.add_column(col, justify="left" if col in ("policy", "release") else "right")
    for p in planned:
        for name, eps, delta in p.releases:
            t.add_row(p.policy, name, number(eps), number(delta))
        t.add_row(
            p.policy,
            "[bold]total / budget[/]",
            f"{number(p.epsilon)} / {number(p.budget_epsilon)}",
            f"{number(p.delta)} / {number(p.budget_delta)}",
            end_section=True,
        )
    return t


def spent_table(rows: list[Spent], db: str) -> Table:
    t = Table(title=f"Spent, from the ledger ({db})", title_justify="left")
    for col in ("epoch", "policy", "refreshed", "epsilon / budget", "delta / budget", ""):
        t.add_column(col, justify="right" if col in ("epoch",) else "left")
    for s in rows:
        refreshed = ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in s.refreshes)
        limit = "?" if s.budget_epsilon is None else number(s.budget_epsilon)
        dlimit = "?" if s.budget_delta is None else number(s.budget_delta)
        verdict = "[red]OVER BUDGET[/]" if s.over else ("[green]ok[/]" if limit != "?" else "")
        t.add_row(
            str(s.epoch),
            s.policy,
            refreshed,
            f"{number(s.epsilon)} / {limit}",
            f"{number(s.delta)} / {dlimit}",
            verdict,
        )
    return t


def spent_summary(rows: list[Spent]) -> str:
    total_eps = sum(s.epsilon for s in rows)
    return (
        f"{len({s.epoch for s in rows})} epoch(s) recorded; ε spent over all of them: "
        f"{number(total_eps)} (epochs compose: the total bounds what all releases reveal together)"
    )
