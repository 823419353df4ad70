"""What a deploy did, for the terminal: files run, refresh scripts recorded, views pruned or
left stale, and where the audit row is."""

from __future__ import annotations

from rich.console import Console

from sqlanon.warehouse.deploy import DeployResult


def render(console: Console, result: DeployResult, where: str) -> None:
    audit = ".".join(result.audit_table)
    console.print(f"deploy {result.deploy} to {where}: ran {len(result.ran)} file(s) in order")
    for name in result.ran:
        console.print(f"  ran       {name}")
    for name in result.recorded:
        console.print(f"  recorded  {name}  (a refresh script, run per epoch: docs/deploy.md)")
    for target in result.pruned:
        console.print(f"  pruned    {target}")
    if result.stale:
        console.print(
            f"{len(result.stale)} view(s) an earlier deploy created are not in this folder and "
            f"were kept: {', '.join(result.stale)} (deploy with --prune to drop them)"
        )
    console.print(f"audit row {result.deploy} appended to {audit}")
