"""How `sqlanon utility` shows its measurements: rich tables for a terminal, JSON for machines."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from sqlanon.measure.models import ModelScore
from sqlanon.measure.synthetic import SyntheticUtility
from sqlanon.measure.utility import CheckResult, ColumnUtility, ReleaseUtility, Stats, ViewUtility
from sqlanon.report import numbers


def to_json(
    views: list[ViewUtility],
    releases: list[ReleaseUtility],
    synthetic: list[SyntheticUtility] | None = None,
) -> str:
    out_views = []
    for v in views:
        d = asdict(v)
        d["suppressed_share"] = v.suppressed_share
        for c, col in zip(d["columns"], v.columns, strict=True):
            c["mean_shift"] = col.mean_shift
        for c, cor in zip(d["correlations"], v.correlations, strict=True):
            c["delta"] = cor.delta
        out_views.append(d)
    checks = [c for x in (*views, *releases, *(synthetic or ())) for c in x.checks]
    doc = {
        "views": out_views,
        "releases": [asdict(r) for r in releases],
        "ok": all(c.ok for c in checks),
    }
    if synthetic:
        doc["synthetic"] = [
            {
                **asdict(t),
                "one_way_mean": t.mean(t.one_way),
                "two_way_mean": t.mean(t.two_way),
                "two_way_max": max((p.distance for p in t.two_way), default=None),
            }
            for t in synthetic
        ]
    return json.dumps(doc, indent=2) + "\n"


num = numbers.figure
pct = numbers.share


def column_cells(c: ColumnUtility) -> list[str]:
    def share(s: Stats) -> str:
        return numbers.MISSING if not s.rows else numbers.fixed(100 * s.nulls / s.rows, 1)

    def pair(a: float | None, b: float | None) -> str:
        return f"{num(a)}→{num(b)}" if c.numeric else ""

    medians = [(s.quantiles or (None, None, None))[1] for s in (c.raw, c.released)]
    kind = "KS" if c.numeric else "TV"
    return [
        f"{share(c.raw)}→{share(c.released)}",
        pair(c.raw.mean, c.released.mean),
        pair(c.raw.std, c.released.std),
        pair(*medians),
        "" if c.numeric else f"{c.raw.distinct}→{c.released.distinct}",
        _order_cell(c),
        f"{kind} {num(c.distance, 3)} {'raw' if c.distance_to == 'raw' else 'pre'}",
    ]


def _order_cell(c: ColumnUtility) -> str:
    if c.rank_correlation is None and c.order_violations is None:
        return ""
    text = num(c.rank_correlation, 3)
    return text + (
        f" ({numbers.count(c.order_violations)} out of order)" if c.order_violations else ""
    )


def print_checks(console: Console, checks: tuple[CheckResult, ...]) -> None:
    for c in checks:
        verdict = "[green]ok[/]" if c.ok else "[red]FAILED[/]"
        measured = "not measurable" if c.measured is None else numbers.figure(c.measured)
        console.print(f"  • check {c.check}: measured {measured} {verdict}")


def print_utility(
    console: Console,
    views: list[ViewUtility],
    releases: list[ReleaseUtility],
    synthetic: list[SyntheticUtility] | None = None,
) -> None:
    for v in views:
        console.print(
            f"[bold]{v.view}[/]: {numbers.count(v.source_rows)} source rows, "
            f"{numbers.count(v.kept_rows)} after "
            f"retention and sampling, {numbers.count(v.released_rows)} released "
            f"({pct(v.suppressed_share)} suppressed)"
        )
        t = Table(show_edge=False)
        for col in ("column", "transform", "NULL %", "mean", "std", "median", "distinct", "rank ρ"):
            t.add_column(col, justify="left" if col in ("column", "transform") else "right")
        t.add_column("distance", justify="right", no_wrap=True)
        for c in v.columns:
            t.add_row(c.column, c.transform, *column_cells(c))
        console.print(t)
        console.print(
            "  each cell raw→released; rank ρ: Spearman's correlation of raw and transformed "
            "values (order-keeping transforms); distance: Kolmogorov–Smirnov for numbers, total "
            "variation otherwise, against the raw column (raw) or the transform before "
            "suppression (pre)",
            markup=False,
            style="dim",
        )
        for cor in v.correlations:
            console.print(
                f"  corr({cor.a}, {cor.b}): raw {num(cor.raw, 3)} → released "
                f"{num(cor.released, 3)} (Δ {num(cor.delta, 3)})",
                markup=False,
            )
        _print_models(console, v.models, v.model_note)
        print_checks(console, v.checks)
        console.print()
    for r in releases:
        epoch = "no epoch refreshed yet" if r.epoch is None else f"epoch {r.epoch}"
        console.print(
            f"[bold]{r.release}[/] ({epoch}): {r.released_groups} groups released, "
            f"{r.true_groups} in the plain GROUP BY"
        )
        t = Table(show_edge=False)
        for col in (
            "measure",
            "cells",
            "median relative error",
            "mean absolute error",
            "true value inside the 95 % interval",
        ):
            t.add_column(col, justify="left" if col == "measure" else "right")
        for m in r.measures:
            t.add_row(
                m.measure,
                str(m.cells),
                pct(m.median_relative_error),
                num(m.mean_absolute_error),
                pct(m.within_interval),
            )
        console.print(t)
        print_checks(console, r.checks)
        console.print()
    for syn in synthetic or []:
        print_synthetic(console, syn)


def print_synthetic(console: Console, u: SyntheticUtility) -> None:
    epoch = "no epoch refreshed yet" if u.epoch is None else f"epoch {u.epoch}"
    console.print(
        f"[bold]{u.table}[/] (synthetic, {epoch}, ε {numbers.parameter(u.epsilon)}): "
        f"{numbers.count(u.rows)} rows against {numbers.count(u.source_rows)} source rows "
        "with every column in its domain"
    )
    t = Table(show_edge=False)
    for col in ("marginals", "count", "mean TVD", "max TVD", "worst"):
        t.add_column(col, justify="left" if col in ("marginals", "worst") else "right")
    for label, group, mean, worst in u.summary():
        t.add_row(
            label,
            str(len(group)),
            num(mean, 3),
            num(worst.distance if worst else None, 3),
            " × ".join(worst.columns) if worst else "",
        )
    console.print(t)
    if u.chosen:
        console.print(f"  pairs this refresh chose (structure: auto): {', '.join(u.chosen)}")
    console.print(
        "  TVD: total-variation distance between the table's and the source's shares "
        "(0 the same, 1 disjoint); other pairs are independent given the structure's",
        markup=False,
        style="dim",
    )
    _print_models(console, u.models, u.model_note)
    print_checks(console, u.checks)
    console.print()


def _print_models(console: Console, models: tuple[ModelScore, ...], note: str) -> None:
    for m in models:
        console.print(
            f"  model trained on {m.trained_on} rows ({numbers.count(m.train_rows)}): "
            f"accuracy {num(m.accuracy, 3)}, ROC-AUC {num(m.auc, 3)}",
            markup=False,
        )
    if note:
        console.print(f"  {note}", markup=False, style="dim")
