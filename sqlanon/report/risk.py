"""How `sqlanon risk` shows its measurements: rich tables for a terminal, JSON for machines."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from sqlanon.measure.risk import ViewRisk
from sqlanon.measure.synthetic import SyntheticRisk
from sqlanon.plan.model import to_jsonable
from sqlanon.report import numbers
from sqlanon.report.utility import pct

# Class-size bands for the terminal; JSON carries every size.
_BANDS = ((1, 1), (2, 2), (3, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None))


def to_json(risks: list[ViewRisk], synthetic: list[SyntheticRisk] | None = None) -> str:
    views = [{**asdict(r), "ok": r.ok} for r in risks]
    doc: dict[str, object] = {"views": views, "ok": all(r.ok for r in risks)}
    if synthetic:
        doc["synthetic"] = [asdict(r) for r in synthetic]
    return json.dumps(doc, indent=2, default=to_jsonable) + "\n"  # decimals, exactly


def _band(low: int, high: int | None) -> str:
    if high is None:
        return f"≥{low}"
    return str(low) if low == high else f"{low}–{high}"


def band_rows(r: ViewRisk) -> list[tuple[str, int, int]]:
    """(size band, classes, records) for the bands that have classes."""
    out = []
    for low, high in _BANDS:
        inside = [(n, c) for n, c in r.class_sizes if n >= low and (high is None or n <= high)]
        if inside:
            out.append((_band(low, high), sum(c for _, c in inside), sum(n * c for n, c in inside)))
    return out


def print_risks(console: Console, risks: list[ViewRisk]) -> None:
    for r in risks:
        t = Table(
            title=f"{r.view}  [dim](quasi-identifiers: {', '.join(r.quasi_identifiers)})[/]",
            title_justify="left",
        )
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_row("records", numbers.count(r.rows))
        if r.population_rows is not None:
            t.add_row(
                "population (source before sampling and suppression)",
                numbers.count(r.population_rows),
            )
        t.add_row("equivalence classes", numbers.count(r.classes))
        t.add_row("k (smallest class)", "view empty" if r.k is None else str(r.k))
        t.add_row(
            f"records in classes smaller than {r.threshold_k}",
            numbers.count(r.records_below_threshold),
        )
        t.add_row("sample uniques (classes of one)", numbers.count(r.sample_uniques))
        for name, a in (("prosecutor", r.prosecutor), ("journalist", r.journalist)):
            if a is not None:
                t.add_row(f"{name} risk: highest / average", f"{pct(a.highest)} / {pct(a.average)}")
                t.add_row(
                    f"{name} risk: records at risk (> 1/{r.threshold_k})", pct(a.records_at_risk)
                )
        if r.marketer is not None:
            t.add_row("marketer risk", pct(r.marketer))
        console.print(t)

        sizes = Table(title="class sizes", title_justify="left")
        for col in ("size", "classes", "records"):
            sizes.add_column(col, justify="right")
        for band, classes, records in band_rows(r):
            sizes.add_row(band, numbers.count(classes), numbers.count(records))
        console.print(sizes)

        if r.sensitive:
            s = Table(title="sensitive columns", title_justify="left")
            for col in ("column", "values", "distinct l", "entropy l", "t", "distance"):
                s.add_column(col, justify="left" if col in ("column", "distance") else "right")
            for x in r.sensitive:
                s.add_row(
                    x.column,
                    str(x.distinct_values),
                    str(x.l_distinct),
                    numbers.fixed(x.l_entropy, 3),
                    numbers.fixed(x.t, 4),
                    x.distance,
                )
            console.print(s)
        for q in r.requirements:
            measured = (
                "—"
                if q.measured is None
                else (
                    numbers.fixed(q.measured, 4)
                    if isinstance(q.measured, float)
                    else str(q.measured)
                )
            )
            verdict = "[green]ok[/]" if q.ok else "[red]NOT MET[/]"
            console.print(
                f"  • {q.label}: required {q.op} {q.required}, measured {measured} {verdict}"
            )
        console.print()


def print_synthetic_risks(console: Console, risks: list[SyntheticRisk]) -> None:
    for r in risks:
        epoch = "no epoch refreshed yet" if r.epoch is None else f"epoch {r.epoch}"
        t = Table(
            title=f"{r.table}  [dim](synthetic, {epoch}; columns: {', '.join(r.columns)})[/]",
            title_justify="left",
        )
        t.add_column("rows of the table", justify="left")
        t.add_column("share", justify="right")
        t.add_row("records", numbers.count(r.rows))
        t.add_row("equal to a source record on every column", numbers.share(r.exact))
        t.add_row("  … to one no other source record equals", numbers.share(r.exact_unique))
        t.add_row("one column away from the closest source record", numbers.share(r.one_off))
        t.add_row("two or more columns away", numbers.share(r.farther))
        console.print(t)
        console.print(
            "  a sanity check, not a privacy proof: the table's guarantee is its ε "
            "(docs/synthetic.md#risk)",
            markup=False,
            style="dim",
        )
