"""`sqlanon keys status` in the terminal: which keys the policies read, loaded or missing."""

from __future__ import annotations

from rich.table import Table


def status_table(rows: list[tuple[str, str, int, str, bool]], db: str) -> Table:
    """rows: (key relation, key name, version, what uses it, loaded)."""
    t = Table(title=f"keys ({db})", title_justify="left")
    for col in ("relation", "key", "version", "used for", ""):
        t.add_column(col)
    for relation, name, version, uses, loaded in rows:
        mark = "[green]loaded[/]" if loaded else "[bold red]missing[/]"
        t.add_row(relation, name, str(version), uses, mark)
    return t
