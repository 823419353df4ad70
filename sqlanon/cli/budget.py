"""`sqlanon budget`: what the releases may spend, and what the ledger shows they spent."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from sqlanon.cli.base import (
    DB_HELP,
    EXIT_CHECK,
    database_error,
    database_errors_of,
    fail,
    load_plan,
    open_database,
    out,
)
from sqlanon.sql import dialect


def budget(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[
        str | None,
        typer.Option("--db", help="Also read the ledger: " + DB_HELP),
    ] = None,
) -> None:
    """Print what each refresh of the releases spends against the budget and, with --db,
    what the warehouse's ledger recorded per epoch (exit 1 if an epoch went over)."""
    from sqlanon.report.budget import planned_table, spent_summary, spent_table
    from sqlanon.warehouse.budget import planned, spent

    plan = load_plan(paths)
    if not plan.releases and not plan.synthetic:
        out.print("no releases: nothing spends privacy budget", markup=False)
        return
    out.print(planned_table(planned(plan)))
    if db is None:
        return
    try:
        engine = open_database(db)
        try:
            d = dialect.get(engine.dialect)
            present = [t for t in plan.ledgers if engine.columns(t)]  # no ledger: no refresh
            recorded = tuple(r for r in plan.releases if r.ledger in present)
            rows = spent(replace(plan, releases=recorded), d, engine)
        finally:
            engine.close()
    except database_errors_of() as exc:
        raise fail(database_error(exc)) from None
    if not rows:
        out.print(f"no refresh recorded in {db} yet: nothing spent", markup=False)
        return
    out.print(spent_table(rows, db))
    out.print(spent_summary(rows), markup=False)
    if any(s.over for s in rows):
        raise typer.Exit(EXIT_CHECK)
