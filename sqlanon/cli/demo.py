"""`sqlanon demo`: the retail example end to end on an embedded DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sqlanon.cli.base import (
    fail,
    out,
)


def demo(
    customers: Annotated[int, typer.Option(help="Customers to generate (orders are 4×).")] = 2000,
    rows: Annotated[int, typer.Option(help="Rows shown side by side.")] = 2,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Keep the demo database in this new DuckDB file (sources, keys, views, the "
            "epoch-1 refresh) for the commands that take --db. An existing file is refused.",
        ),
    ] = None,
) -> None:
    """Run the retail example end to end on an embedded DuckDB."""
    from sqlanon.demo.run import run

    if db is not None and db.exists():
        raise fail(f"{db} exists: the demo writes a new database (remove it, or choose a path)")
    run(out, customers=customers, rows=rows, database=str(db) if db else ":memory:")
    if db is not None:
        out.print(
            f"\nThe demo database is in {db}: try [bold]sqlanon risk "
            f"examples/retail/policy.yml --db {db}[/]."
        )
