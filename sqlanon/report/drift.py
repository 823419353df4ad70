"""`sqlanon drift` as a table or JSON: what the live catalog says against the policy."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.table import Table

from sqlanon.measure.drift import ERROR, Finding


def findings_table(findings: list[Finding], db: str) -> Table:
    t = Table(title=f"schema drift ({db})", title_justify="left")
    for col in ("", "object", "relation", "column", "what"):
        t.add_column(col, overflow="fold")
    for f in findings:
        mark = "[bold red]error[/]" if f.severity == ERROR else "[yellow]warning[/]"
        t.add_row(mark, f.object, f.relation, f.column or "", f.detail)
    return t


def to_json(findings: list[Finding]) -> str:
    doc = {
        "findings": [asdict(f) for f in findings],
        "ok": not any(f.severity == ERROR for f in findings),
    }
    return json.dumps(doc, indent=2) + "\n"
