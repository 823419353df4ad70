"""The demo: generated retail data → the retail policy → views in DuckDB, shown side by side."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import replace
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from sqlanon import resources
from sqlanon.demo.retail import generate, load
from sqlanon.plan.build import build_plan
from sqlanon.plan.model import Plan, ViewPlan, source_label
from sqlanon.policy.diagnostics import display_path
from sqlanon.policy.load import load_policies
from sqlanon.report import numbers
from sqlanon.sql import dialect
from sqlanon.sql.views import view_query
from sqlanon.warehouse.apply import (
    ReleaseReport,
    ViewReport,
    create,
    create_key_tables,
    refresh,
    report,
)
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

RAW_PREFIX = "raw value of "


def side_by_side(view: ViewPlan) -> ViewPlan:
    """The view with each source column alongside its anonymized value and no suppression:
    for showing what the policy does, never for release."""
    extra = [c.raw_copy(RAW_PREFIX + c.output) for c in view.emitted_columns]
    return replace(view, columns=view.columns + tuple(extra), k_anonymity=None)


def print_reports(console: Console, reports: list[ViewReport]) -> None:
    t = Table(title="What the views released", title_justify="left")
    for col in ("view", "source", "kept", "suppressed", "released", "k-anonymity"):
        t.add_column(
            col, justify="left" if col in ("view", "k-anonymity") else "right", no_wrap=True
        )
    for r in reports:
        if r.k is None:
            kcell = "—"
        elif r.smallest_class is None:
            kcell = f"k={r.k}: view empty"
        else:
            verdict = "[green]ok[/]" if r.k_ok else "[red]NOT MET[/]"
            kcell = f"k={r.k}: smallest class {r.smallest_class} {verdict}"
        t.add_row(
            r.target,
            str(r.source_rows),
            str(r.kept_rows),
            str(r.suppressed) if r.k else "—",
            str(r.view_rows),
            kcell,
        )
    console.print(t)


def print_release_reports(console: Console, reports: list[ReleaseReport]) -> None:
    t = Table(title="Differentially private releases refreshed", title_justify="left")
    for col in ("release", "epoch", "groups or rows", "epsilon", "delta"):
        t.add_column(col, justify="left" if col == "release" else "right", no_wrap=True)
    for r in reports:
        t.add_row(
            r.target if r.kind == "release" else f"{r.target} (synthetic)",
            str(r.epoch),
            numbers.count(r.groups),
            numbers.parameter(r.epsilon),
            numbers.parameter(r.delta),
        )
    console.print(t)


def run(console: Console, customers: int = 2000, rows: int = 2, database: str = ":memory:") -> Plan:
    d = dialect.get("duckdb")
    engine = DuckDBEngine(database)
    tables = generate(customers)
    load(engine, tables)
    console.rule("[bold]sqlanon demo[/] — embedded DuckDB")
    console.print(
        "Loaded generated retail data: "
        + ", ".join(f"raw.{t.name} ({numbers.count(len(t.rows))} rows)" for t in tables)
    )

    policy_path = resources.retail_policy()
    plan = build_plan(load_policies([str(policy_path)]))
    key_names = plan.key_names
    (key_table,) = plan.key_tables
    create_key_tables(plan, d, engine)
    for name in key_names:
        store(engine, d, key_table, name, 1, secrets.token_bytes(32))
    console.print(
        f"Created {'.'.join(key_table)} and loaded a fresh random key for each of "
        f"{', '.join(key_names)} (never printed; pseudonyms differ on every run)."
    )
    console.print(
        f"Compiled [bold]{display_path(policy_path)}[/] for DuckDB and created "
        f"{len(plan.views)} views.\n"
    )
    create(plan, d, engine)

    shown = plan.views[0]
    preview = side_by_side(shown)
    order = d.ident(RAW_PREFIX + shown.emitted_columns[0].output)
    sql = d.statement("preview", view_query(preview, d), order, d.number(rows)).text
    result = engine.query(sql)
    n = len(shown.emitted_columns)
    for i, row in enumerate(result, start=1):
        t = Table(
            title=f"{source_label(shown.source)} → {'.'.join(shown.target)}, row {i}",
            title_justify="left",
        )
        for col in ("column", "transform", "raw", "anonymized"):
            t.add_column(col, overflow="fold", no_wrap=col == "transform")
        raw_by_source = {c.sources[0]: row[n + j] for j, c in enumerate(shown.emitted_columns)}
        for j, c in enumerate(shown.emitted_columns):
            label = c.output if c.sources[0] == c.output else f"{c.output} ← {c.sources[0]}"
            t.add_row(label, c.transform, _show(raw_by_source[c.sources[0]]), _show(row[j]))
        for c in shown.columns:
            if not c.emitted:
                t.add_row(c.output, "drop", "…", "[dim](not in the view)[/]")
        console.print(t)

    reports = report(plan, d, engine)
    print_reports(console, reports)
    orders = next((v for v in plan.views if v.name == "orders"), None)
    if orders is not None:
        customer_view = plan.views[0]
        matched, total = engine.query(
            d.statement(
                "count_matches",
                d.relation(orders.target),
                d.relation(customer_view.target),
                d.ident("customer_id"),
            ).text
        )[0]
        console.print(
            f"Pseudonyms join: {numbers.count(matched)} of {numbers.count(total)} anonymized "
            "orders match an anonymized "
            "customer" + (" (the rest belong to suppressed customers)." if matched < total else ".")
        )
    console.print(
        "[dim]kept: rows left after retention and sampling; suppressed: rows in "
        "k-anonymity classes smaller than k.[/]"
    )
    if plan.releases:
        show_releases(console, plan, engine)
    console.print(
        "\nNext: [bold]sqlanon explain examples/retail/policy.yml[/] · "
        "[bold]sqlanon compile examples/retail/policy.yml --out build/duckdb[/]"
    )
    engine.close()
    return plan


def show_releases(console: Console, plan: Plan, engine) -> None:  # type: ignore[no-untyped-def]
    """Refresh the releases for epoch 1 and show the first one with its 95 % intervals."""
    d = dialect.get(engine.dialect)
    console.print()
    print_release_reports(console, refresh(plan, d, engine, epoch=1))
    r = plan.releases[0]
    groups = [c.output for c in r.group_by]
    measures = [m.name for m in r.measures]
    names = [c for c, _ in engine.columns(r.target)]
    at = [names.index(g) for g in groups]
    rows = sorted(
        engine.query(d.statement("select_all", d.relation(r.target)).text),
        key=lambda row: [str(row[i]) for i in at],
    )
    t = Table(
        title=f"{'.'.join(r.target)} (noisy; \\[low, high] is the 95 % interval)",
        title_justify="left",
    )
    for col in groups + measures:
        grouping = col in groups
        t.add_column(col, justify="left" if grouping else "right", no_wrap=grouping)
    for row in rows:
        v = dict(zip(names, row, strict=True))
        cells = [_short(v[g]) for g in groups]
        for m in measures:
            cells.append(
                f"{_short(v[m])} [dim][{_short(v[m + '_ci_low'])}, {_short(v[m + '_ci_high'])}][/]"
            )
        t.add_row(*cells)
    console.print(t)
    console.print(
        "[dim]Each refresh spends the release's epsilon; the ledger "
        f"{'.'.join(r.ledger)} records it, and each refresh draws fresh noise.[/]"
    )


def _short(value: object) -> str:
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (float, Decimal)):
        return numbers.amount(value)
    return _show(value)


def _show(value: object) -> str:
    return "NULL" if value is None else str(value)
