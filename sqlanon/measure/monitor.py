"""Monitoring over time (docs/monitor.md): one run measures what `risk`, `utility` and `drift`
measure, appends the figures to a history table in the warehouse and compares them with the
previous run. A scheduled job exits 1 when privacy got worse — k or l fell, t rose, new sample
uniques, more records in small classes, a higher re-identification risk —, when a declared
utility check stopped holding (the declared limits on distribution shift and error), or when
the sources' schema changed.

Figures that only move with the data (a mean, a distance without a declared limit) are
stored, never flagged: a job that fails on every new day's data is switched off."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from statistics import mean
from typing import Any

from sqlanon import __version__
from sqlanon.measure import drift, risk, utility
from sqlanon.measure.synthetic import counts, measure_synthetic, measure_synthetic_risk
from sqlanon.plan.model import Plan, SyntheticPlan
from sqlanon.report import numbers
from sqlanon.sql.dialect import Dialect
from sqlanon.warehouse.common import DEFAULT_SCHEMA, append_only_table, missing_columns

HISTORY_NAME = "sqlanon_monitor"
HISTORY_COLUMNS = (
    ("run", "integer"),  # 1, 2, … in run order
    ("measured_at", "text"),  # UTC, ISO 8601
    ("database_user", "text"),
    ("os_user", "text"),
    ("sqlanon_version", "text"),
    ("policies", "text"),  # JSON: the plan's policy files with their digests
    ("figures", "text"),  # JSON: figure name → value
    ("changes", "text"),  # JSON: what this run flagged
)
# how a figure gets worse: "down" (k, l) or "up" (t, uniques, risk); "check" is a declared
# utility check (1 holds, 0 fails); "schema" a list of drift findings; None: stored only
LOWER, HIGHER, CHECK, SCHEMA = "down", "up", "check", "schema"


@dataclass(frozen=True)
class Figure:
    name: str  # "anon.customers: k"
    value: Any  # a number, None (not measurable), or a list (schema findings)
    worse: str | None


@dataclass(frozen=True)
class Run:
    run: int
    figures: tuple[Figure, ...]
    previous: dict[str, Any] | None  # the previous run's figures, None on the first run
    changes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.changes


def history_table(plan: Plan) -> tuple[str, ...]:
    """Beside the key relation (where the deploy audit table is), else privacy.<name>."""
    schema = plan.key_tables[0][:-1] if plan.key_tables else (DEFAULT_SCHEMA,)
    return (*schema, HISTORY_NAME)


def figures(
    plan: Plan, d: Dialect, engine: Any, step: Callable[[str], None] | None = None
) -> list[Figure]:
    out: list[Figure] = []
    for r in risk.measure(plan, d, engine, True, step):
        name = r.view
        out += [
            Figure(f"{name}: k", r.k, LOWER),
            Figure(f"{name}: sample uniques", r.sample_uniques, HIGHER),
            Figure(
                f"{name}: records in classes below {r.threshold_k}",
                r.records_below_threshold,
                HIGHER,
            ),
            Figure(f"{name}: rows", r.rows, None),
            Figure(f"{name}: classes", r.classes, None),
        ]
        if r.prosecutor is not None:
            out.append(Figure(f"{name}: highest prosecutor risk", r.prosecutor.highest, HIGHER))
        if r.journalist is not None:
            out.append(Figure(f"{name}: highest journalist risk", r.journalist.highest, HIGHER))
        for s in r.sensitive:
            out.append(Figure(f"{name}: l of {s.column}", s.l_distinct, LOWER))
            out.append(Figure(f"{name}: t of {s.column}", s.t, HIGHER))
    views, releases = utility.measure(plan, d, engine, None, step)
    for v in views:
        out.append(Figure(f"{v.view}: suppressed share", v.suppressed_share, None))
        for c in v.checks:
            out.append(Figure(f"{v.view}: {c.check}", int(c.ok), CHECK))
    for rel in releases:
        for c in rel.checks:
            out.append(Figure(f"{rel.release}: {c.check}", int(c.ok), CHECK))
    for t in plan.synthetic:
        out += _synthetic_figures(t, d, engine)
        if step is not None:
            step(t.target_name)
    findings = drift.check(plan, engine)
    schema = sorted(
        f"{f.severity}: {f.where}: {f.kind}" for f in findings if f.kind != "undeclared_type"
    )
    out.append(Figure("sources: schema findings", schema, SCHEMA))
    return out


def _synthetic_figures(t: SyntheticPlan, d: Dialect, engine: Any) -> list[Figure]:
    """A synthetic table's latest epoch against its source: its declared checks gate (a check
    that stops holding is flagged, as a view's or a release's); the distances and the share
    of rows equal to a source row are stored, never flagged — each refresh draws new rows
    from new noise, so they move every run, and the table's privacy is its ε, not them."""
    counted = counts(t, d, engine, None)  # the source and the latest epoch, read once
    u = measure_synthetic(t, d, engine, None, counted=counted)
    name = u.table
    out = [Figure(f"{name}: epoch", u.epoch, None), Figure(f"{name}: rows", u.rows, None)]
    if u.epoch is not None:
        two = [p.distance for p in u.two_way]
        matches = measure_synthetic_risk(t, d, engine, counted=counted).exact
        out += [
            Figure(f"{name}: mean 1-way distance", mean(p.distance for p in u.one_way), None),
            Figure(f"{name}: mean 2-way distance", mean(two) if two else None, None),
            Figure(f"{name}: largest 2-way distance", max(two, default=None), None),
            Figure(f"{name}: exact matches", matches, None),
        ]
    out += [Figure(f"{name}: {c.check}", int(c.ok), CHECK) for c in u.checks]
    return out


def compare(current: list[Figure], previous: dict[str, Any] | None) -> list[str]:
    """What got worse since the previous run (and, on the first run, what is already wrong:
    a failing check, or a source the policy cannot run on)."""
    changes = []
    for f in current:
        before = None if previous is None else previous.get(f.name)
        if f.worse == CHECK and f.value == 0 and before != 0:
            changes.append(f"{f.name}: no longer holds")
        elif f.worse == SCHEMA:
            # the first run takes the catalog as it is, unless the policy cannot run on it;
            # later runs name every new finding (a column that appeared, one that went)
            new = sorted(set(f.value) - set(before or []))
            if previous is None:
                new = [x for x in new if x.startswith(f"{drift.ERROR}: ")]
            changes += [f"schema changed: {x}" for x in new]
        elif f.worse in (LOWER, HIGHER) and before is not None and f.value is not None:
            # beyond float noise: an engine may sum a t or a risk in another order next run
            slack = 1e-9 * max(1.0, abs(before))
            worse = f.value < before - slack if f.worse == LOWER else f.value > before + slack
            if worse:
                word = "fell" if f.worse == LOWER else "rose"
                changes.append(f"{f.name} {word} from {_text(before)} to {_text(f.value)}")
    return changes


def _text(x: Any) -> str:
    return numbers.figure(x) if isinstance(x, float) else str(x)


def run(plan: Plan, d: Dialect, engine: Any, step: Callable[[str], None] | None = None) -> Run:
    """Measure, compare with the latest stored run, append this one (in the history table,
    created on first use)."""
    table = history_table(plan)
    relation = d.relation(table)
    for statement in append_only_table(d, table, HISTORY_COLUMNS):
        engine.execute(statement)
    for statement in missing_columns(engine, d, table, HISTORY_COLUMNS):
        engine.execute(statement)
    names = [d.ident(n) for n, _ in HISTORY_COLUMNS]
    key = d.ident("run")
    latest = engine.query(d.statement("latest_row", relation, key, [key, d.ident("figures")]).text)
    number = 1 if not latest else int(latest[0][0]) + 1
    previous = json.loads(latest[0][1]) if latest else None

    current = figures(plan, d, engine, step)
    changes = compare(current, previous)
    user = engine.query(d.statement("current_user_query").text)[0][0]
    row = (
        number,
        dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        str(user),
        getpass.getuser(),
        __version__,
        json.dumps([{"file": p.file, "sha256": p.sha256} for p in plan.policies], sort_keys=True),
        json.dumps({f.name: f.value for f in current}, sort_keys=True),
        json.dumps(changes),
    )
    marks = [engine.placeholder()] * len(row)
    engine.execute(d.statement("insert_row", relation, names, marks).text, row)
    return Run(number, tuple(current), previous, tuple(changes))


def steps(plan: Plan) -> int:
    """Queries a run makes, for a progress display."""
    return risk.steps(plan, True) + utility.steps(plan) + len(plan.synthetic)
