"""`sqlanon risk`, `utility`, `tune`, `drift` and `monitor`: figures measured in the
warehouse, handed to the renderers of sqlanon.report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sqlanon.cli.base import (
    DB_HELP,
    EXIT_CHECK,
    Format,
    err,
    fail,
    load_plan,
    measure_in,
    out,
)
from sqlanon.output import write as output_write
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.report import numbers


def risk(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    population: Annotated[
        bool,
        typer.Option(
            "--population/--no-population",
            help="Also read the source (with its keys) for journalist and marketer risk.",
        ),
    ] = True,
) -> None:
    """Measure each view's re-identification risk (k, class sizes, prosecutor, journalist and
    marketer risk) and its sensitive columns' l-diversity and t-closeness, by queries in the
    database; exit 1 when a declared k, l or t is not met (docs/risk.md)."""
    from sqlanon.measure.risk import measure, steps
    from sqlanon.measure.synthetic import measure_synthetic_risk
    from sqlanon.report.risk import print_risks, print_synthetic_risks, to_json

    plan = load_plan(paths)
    show = format is Format.table and err.is_terminal

    def work(e, d, step):  # type: ignore[no-untyped-def]
        views = measure(plan, d, e, population, step)
        synthetic = []
        for t in plan.synthetic:
            step(t.target_name)
            synthetic.append(measure_synthetic_risk(t, d, e))
        return views, synthetic

    risks, synthetic = measure_in(db, steps(plan, population) + len(plan.synthetic), show, work)
    if format is Format.json:
        sys.stdout.write(to_json(risks, synthetic))
    elif not risks and not synthetic:
        out.print("no view declares quasi-identifiers: nothing to measure", markup=False)
    else:
        print_risks(out, risks)
        print_synthetic_risks(out, synthetic)
    if not all(r.ok for r in risks):
        if format is Format.table:
            err.print("a declared requirement (k, l or t) is not met", markup=False)
        raise typer.Exit(EXIT_CHECK)


def utility(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    epoch: Annotated[
        int | None, typer.Option("--epoch", min=0, help="Release epoch (default: the latest).")
    ] = None,
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a report with charts and the risk summary."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="A column to predict: train a model on each view and synthetic table that "
            "has it and on the raw data, test on real rows (needs scikit-learn).",
        ),
    ] = None,
) -> None:
    """Compare raw and anonymized data in the database: per column NULLs, mean, std,
    quantiles and distribution distance; correlations; suppression; each release's error
    against the plain aggregate; each synthetic table's one- and two-way marginals against
    its source. Exit 1 when a declared utility check fails (docs/utility.md).
    Reads raw data: for whoever may."""
    from sqlanon.measure.risk import measure as risk_measure
    from sqlanon.measure.synthetic import measure_synthetic
    from sqlanon.measure.utility import measure, model_columns, steps
    from sqlanon.report.utility import print_utility, to_json

    plan = load_plan(paths)
    show = format is Format.table and err.is_terminal
    if (
        target is not None
        and not any(target in (a.name for a in t.attributes) for t in plan.synthetic)
        and not any(target in (c.output for c in model_columns(v)) for v in plan.views)
    ):
        raise fail(f"--target {target}: no view or synthetic table has that column")

    def work(e, d, step):  # type: ignore[no-untyped-def]
        measured = measure(plan, d, e, epoch, step, target)
        synthetic = []
        for t in plan.synthetic:
            step(t.target_name)
            names = {a.name for a in t.attributes}
            synthetic.append(measure_synthetic(t, d, e, epoch, target if target in names else None))
        return measured, synthetic, (risk_measure(plan, d, e) if html else [])

    (views, releases), synthetic, risks = measure_in(
        db, steps(plan) + len(plan.synthetic), show, work
    )
    if html is not None:
        from sqlanon.report.html import render

        title = ", ".join(
            sorted(
                {v.policy for v in plan.views}
                | {r.policy for r in plan.releases}
                | {t.policy for t in plan.synthetic}
            )
        )
        output_write.replace_file(
            html, render(f"{title}: risk and utility", db, views, releases, risks, synthetic)
        )
        if format is Format.table:
            err.print(f"wrote {html}", markup=False)
    if format is Format.json:
        sys.stdout.write(to_json(views, releases, synthetic))
    else:
        print_utility(out, views, releases, synthetic)
    failed = [c for x in (*views, *releases, *synthetic) for c in x.checks if not c.ok]
    if failed:
        if format is Format.table:
            for c in failed:
                measured = "not measurable" if c.measured is None else numbers.figure(c.measured)
                err.print(f"utility check failed: {c.check} (measured {measured})", markup=False)
        raise typer.Exit(EXIT_CHECK)


def tune(
    paths: Annotated[list[str], typer.Argument(help="The policy file (and any it needs).")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    table: Annotated[
        str | None, typer.Option("--table", help="The table to tune (default: the only one).")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=2, help="Default: the policy's k.")] = None,
    max_suppression: Annotated[
        float, typer.Option("--max-suppression", min=0, max=100, help="Percent of rows.")
    ] = 0.0,
    l_value: Annotated[
        int | None, typer.Option("--l", min=1, help="Distinct l-diversity to require too.")
    ] = None,
    t_value: Annotated[
        float | None, typer.Option("--t", min=0, max=1, help="t-closeness to require too.")
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option("--sensitive", help="Default: the policy's l/t column.")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite the levels in the policy file.")
    ] = False,
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Search the hierarchy levels of the quasi-identifiers for the least-generalized ones
    that reach k (and l, t) with at most --max-suppression % of rows suppressed; print them
    as a patch of the policy, or --write it (docs/risk.md)."""
    from decimal import Decimal

    from sqlanon.measure.tune import Goal, TuneError, search, with_levels
    from sqlanon.report.tune import print_result, result_json

    plan = load_plan(paths)
    candidates = [v for v in plan.views if v.k_anonymity and (table is None or v.name == table)]
    if len(candidates) != 1:
        names = ", ".join(v.name for v in plan.views if v.k_anonymity) or "none"
        raise fail(f"name one table with k_anonymity to tune (--table); tables: {names}")
    view = candidates[0]
    declared = view.l_diversity or view.t_closeness
    goal = Goal(
        k=k or view.k_anonymity.k,  # type: ignore[union-attr]
        max_suppression=Decimal(str(max_suppression)) / 100,
        l=l_value,
        sensitive=sensitive or (declared.sensitive if declared else None),
        t=None if t_value is None else Decimal(str(t_value)),
    )
    if (goal.l or goal.t is not None) and goal.sensitive is None:
        raise fail("--l and --t need a sensitive column: --sensitive COLUMN")
    show = format is Format.table and err.is_terminal
    try:
        result = measure_in(
            db,
            None,
            show,
            lambda e, d, step: search(view, goal, d, e, lambda n: step(f"{n} nodes evaluated")),
        )
    except TuneError as exc:
        raise fail(str(exc)) from None
    patched = None
    if result.best is not None:
        levels = {
            d.column: lvl for d, lvl in zip(result.dimensions, result.best.levels, strict=True)
        }
        source = Path(view.policy_file)
        original = source.read_text(encoding="utf-8")
        try:
            patched = with_levels(original, view.policy_file, view.name, levels, goal)
        except (TuneError, PolicyError) as exc:
            raise fail(str(exc)) from None
        if write and patched != original:
            output_write.replace_file(source, patched)
    if format is Format.json:
        sys.stdout.write(result_json(result, goal))
    else:
        print_result(
            out, result, goal, view.policy_file, original if patched else None, patched, write
        )
    if result.best is None:
        raise typer.Exit(EXIT_CHECK)


def drift(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Compare the live source catalog with the policy: new columns are reported (they stay
    out of the views), missing columns and type changes are errors (exit 1; docs/drift.md)."""
    from sqlanon.measure.drift import ERROR, check
    from sqlanon.report.drift import findings_table, to_json

    plan = load_plan(paths)
    findings = measure_in(db, None, False, lambda e, d, step: check(plan, e))
    if format is Format.json:
        sys.stdout.write(to_json(findings))
    elif not findings:
        out.print("no drift: every source matches the policy", markup=False)
    else:
        out.print(findings_table(findings, db))
    if any(f.severity == ERROR for f in findings):
        raise typer.Exit(EXIT_CHECK)


def monitor(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Measure what risk, utility and drift measure, append the figures to a history table in
    the warehouse and compare with the previous run: exit 1 when k or l fell, t or a risk
    rose, new sample uniques appeared, a declared utility check stopped holding or the
    sources' schema changed (docs/monitor.md). For a scheduled job; reads raw data."""
    from sqlanon.measure.monitor import history_table, run
    from sqlanon.measure.monitor import steps as monitor_steps
    from sqlanon.report.monitor import render, to_json

    plan = load_plan(paths)
    show = format is Format.table and err.is_terminal
    result = measure_in(db, monitor_steps(plan), show, lambda e, d, step: run(plan, d, e, step))
    if format is Format.json:
        sys.stdout.write(to_json(result))
    else:
        render(out, result, ".".join(history_table(plan)))
    if not result.ok:
        raise typer.Exit(EXIT_CHECK)
