"""How `sqlanon diff` shows its result: a terminal table, markdown for a pull-request comment,
or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from sqlanon.review.diff import NEUTRAL, STRENGTHENED, WEAKENED, Change

LABEL = {WEAKENED: "WEAKENED", STRENGTHENED: "STRENGTHENED", NEUTRAL: "neutral"}


def _counts(changes: list[Change]) -> str:
    n = {v: sum(1 for c in changes if c.verdict == v) for v in (WEAKENED, STRENGTHENED, NEUTRAL)}
    return f"{n[WEAKENED]} weakened, {n[STRENGTHENED]} strengthened, {n[NEUTRAL]} neutral"


def to_json(changes: list[Change], files: dict[str, list[tuple[str, str]]]) -> str:
    doc = {
        "changes": [asdict(c) for c in changes],
        "files": {d: [{"path": p, "status": s} for p, s in f] for d, f in files.items()},
        "weakened": any(c.verdict == WEAKENED for c in changes),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    """A table cell: pipes and newlines would break the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, changes: list[Change], files: dict[str, list[tuple[str, str]]]) -> str:
    lines = [f"### Privacy impact: {title}", ""]
    if not changes:
        lines.append("No change to what is released.")
    else:
        weakened = any(c.verdict == WEAKENED for c in changes)
        lines.append(
            f"**{_counts(changes)}**"
            + (" — a privacy reviewer should approve this." if weakened else "")
        )
        lines += ["", "| | object | change | why |", "|---|---|---|---|"]
        for c in changes:
            why = c.reason + (f" ({c.note})" if c.note else "")
            lines.append(
                f"| **{LABEL[c.verdict]}** | `{_md(c.object)}` | {_md(c.change)} | {_md(why)} |"
            )
    for dialect, changed in files.items():
        if changed:
            lines += ["", f"Generated SQL that changes ({dialect}):", ""]
            lines += [f"- `{p}` ({status})" for p, status in changed]
    return "\n".join(lines) + "\n"


def print_table(
    console: Console, changes: list[Change], files: dict[str, list[tuple[str, str]]]
) -> None:
    if not changes:
        console.print("no change to what is released", markup=False)
    else:
        t = Table(title=_counts(changes), title_justify="left")
        for col in ("", "object", "change", "why"):
            t.add_column(col, overflow="fold")
        style = {WEAKENED: "bold red", STRENGTHENED: "green", NEUTRAL: "dim"}
        for c in changes:
            why = c.reason + (f" ({c.note})" if c.note else "")
            t.add_row(f"[{style[c.verdict]}]{LABEL[c.verdict]}[/]", c.object, c.change, why)
        console.print(t)
    for dialect, changed in files.items():
        for p, status in changed:
            console.print(f"  {dialect}: {p} ({status})", markup=False)
