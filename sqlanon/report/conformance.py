"""`sqlanon conformance` in the terminal: the transform × engine matrix of verdicts."""

from __future__ import annotations

from rich.table import Table

from sqlanon.review.conformance import Case


def matrix(cases: list[Case], names: list[str], cells: dict[tuple[str, str], list[str]]) -> Table:
    """cells: per (transform, engine), each case's verdict: ok, FAIL, n/a or unavailable."""
    t = Table(
        title=f"Conformance: {len(cases)} cases, {sum(len(c.vectors) for c in cases)} vectors",
        title_justify="left",
    )
    t.add_column("transform")
    for name in names:
        t.add_column(name, justify="center")
    for transform in sorted({c.transform for c in cases}):
        row = [transform]
        for name in names:
            verdicts = cells[(transform, name)]
            ok = verdicts.count("ok")
            if "unavailable" in verdicts:
                row.append("[dim]unavailable[/]")
            elif "FAIL" in verdicts:
                row.append(f"[red]{verdicts.count('FAIL')} failing[/]")
            else:
                na = verdicts.count("n/a")
                row.append(f"[green]{ok}/{len(verdicts)} ok[/]" + (f" ({na} n/a)" if na else ""))
        t.add_row(*row)
    return t
