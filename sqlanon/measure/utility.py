"""What anonymization did to the data's analytic value, measured in the engine (docs/utility.md):
each view's columns raw against released, correlations, suppression; each release's noisy
cells against the plain aggregate; and the policy's declared checks, which gate CI."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from sqlanon.measure.models import ModelScore, scores
from sqlanon.plan.model import DIRECT, ColumnStep, Plan, ReleasePlan, UtilityCheck, ViewPlan
from sqlanon.plan.types import NUMERIC_TYPES, ORDERED_FAMILIES, engine_family
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.query import measure_input, source_sql
from sqlanon.sql.releases import output_columns
from sqlanon.sql.shapes import Sql
from sqlanon.sql.views import SOURCE_ALIAS, qualifier, view_query
from sqlanon.transforms import REGISTRY
from sqlanon.transforms.base import LowerContext
from sqlanon.warehouse import live_types
from sqlanon.warehouse.apply import unsuppressed

# transforms meant to keep their input's order (bucket lower bounds, truncated dates, ages)


@dataclass(frozen=True)
class Stats:
    rows: int
    nulls: int
    distinct: int | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: tuple[float | None, float | None, float | None] | None = None  # 25, 50, 75 %


@dataclass(frozen=True)
class ColumnUtility:
    column: str
    transform: str
    numeric: bool
    raw: Stats
    released: Stats
    distance: float | None  # KS (numeric) or total variation (other)
    distance_to: str  # "raw" or "before suppression": what the released values are compared with
    histogram: tuple[tuple[str, float, float], ...] = ()  # (label, share compared, released)
    rank_correlation: float | None = None  # Spearman's ρ of raw and transformed (order kept)
    order_violations: int | None = None  # rows ranked below a row with a smaller raw value

    @property
    def mean_shift(self) -> float | None:
        a, b = self.raw.mean, self.released.mean
        if a is None or b is None or a == 0:
            return None
        return abs(b - a) / abs(a)


@dataclass(frozen=True)
class Correlation:
    a: str
    b: str
    raw: float | None
    released: float | None

    @property
    def delta(self) -> float | None:
        if self.raw is None or self.released is None:
            return None
        return abs(self.released - self.raw)


@dataclass(frozen=True)
class CheckResult:
    check: str  # UtilityCheck.describe()
    limit: float
    measured: float | None
    ok: bool


@dataclass(frozen=True)
class ViewUtility:
    view: str
    source_rows: int
    kept_rows: int  # after retention and sampling, before suppression
    released_rows: int
    columns: tuple[ColumnUtility, ...]
    correlations: tuple[Correlation, ...]
    checks: tuple[CheckResult, ...]
    models: tuple[ModelScore, ...] = ()  # with --target (sqlanon/measure/models.py)
    model_note: str = ""

    @property
    def suppressed_share(self) -> float:
        return (self.kept_rows - self.released_rows) / self.kept_rows if self.kept_rows else 0.0


@dataclass(frozen=True)
class MeasureError:
    measure: str
    cells: int  # released cells compared
    median_relative_error: float | None  # over cells whose true value is not 0
    mean_absolute_error: float | None
    within_interval: float | None  # share of cells whose true value lies in the 95 % interval


@dataclass(frozen=True)
class ReleaseUtility:
    release: str
    epoch: int | None
    true_groups: int
    released_groups: int
    measures: tuple[MeasureError, ...]
    checks: tuple[CheckResult, ...]
    # what the release promises, beside its measured error (the report shows both)
    epsilon: float = 0.0
    delta: float = 0.0
    privacy_unit: str = ""
    bounds: str = ""


def measure(
    plan: Plan,
    d: Dialect,
    engine: Any,
    epoch: int | None = None,
    step: Callable[[str], None] | None = None,
    target: str | None = None,
) -> tuple[list[ViewUtility], list[ReleaseUtility]]:
    tick = step or (lambda _: None)
    views = []
    for v in plan.views:
        tick(".".join(v.target))
        views.append(measure_view(v, d, engine, target))
    releases = []
    for r in plan.releases:
        tick(".".join(r.target))
        releases.append(measure_release(r, d, engine, epoch))
    return views, releases


def steps(plan: Plan) -> int:
    return len(plan.views) + len(plan.releases)


def _one(engine: Any, sql: str) -> tuple[Any, ...]:
    row: tuple[Any, ...] = engine.query(sql)[0]
    return row


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def measure_view(view: ViewPlan, d: Dialect, engine: Any, target: str | None = None) -> ViewUtility:
    source = d.statement("select_all", source_sql(view.source, d))
    released = d.statement("select_all", d.relation(view.target))
    before = view_query(unsuppressed(view), d)

    def count(q: Sql) -> int:
        return int(_one(engine, d.statement("count_rows", q).text)[0] or 0)

    source_types = live_types(engine, view.source)
    view_types = live_types(engine, view.target)
    columns = []
    numeric_cols: list[ColumnStep] = []
    for c in view.emitted_columns:
        raw_x, out_x = d.ident(c.sources[0]), d.ident(c.output)
        numeric = _is_numeric(source_types.get(c.sources[0].lower()), c.input_type) and (
            _is_numeric(view_types.get(c.output.lower()), c.output_type)
        )
        if numeric:
            numeric_cols.append(c)
            raw = _numeric_stats(engine, d, source, raw_x)
            out = _numeric_stats(engine, d, released, out_x)
            (distance, hist), to = _distance(engine, d, source, raw_x, released, out_x, True), "raw"
        else:
            raw = _value_stats(engine, d, source, raw_x)
            out = _value_stats(engine, d, released, out_x)
            if c.transform == "keep":
                distance, hist = _distance(engine, d, source, raw_x, released, out_x, False)
                to = "raw"
            else:
                distance, hist = _distance(engine, d, before, out_x, released, out_x, False)
                to = "before suppression"
        if c.privacy_class == DIRECT:
            hist = ()  # the values of a direct identifier are not for a report
        rho = violations = None
        out_family = engine_family(view_types.get(c.output.lower(), ""))
        if REGISTRY[c.transform].keeps_order and out_family in ORDERED_FAMILIES:
            rho, violations = _order(engine, d, view, c)
        columns.append(
            ColumnUtility(
                c.output, c.transform, numeric, raw, out, distance, to, hist, rho, violations
            )
        )

    correlations = tuple(
        _correlation(engine, d, source, released, a, b) for a, b in combinations(numeric_cols, 2)
    )
    result = ViewUtility(
        view=".".join(view.target),
        source_rows=count(source),
        kept_rows=count(before),
        released_rows=count(released),
        columns=tuple(columns),
        correlations=correlations,
        checks=(),
    )
    checks = tuple(_view_check(u, result, view, d, engine, source, released) for u in view.utility)
    models: tuple[ModelScore, ...] = ()
    note = ""
    if target is not None and target in [c.output for c in model_columns(view)]:
        models, note = _view_models(view, d, engine, target, source, released, before)
    return ViewUtility(
        **{**result.__dict__, "checks": checks, "models": models, "model_note": note}
    )


def model_columns(view: ViewPlan) -> list[ColumnStep]:
    """The columns a model may use: released, and not a direct identifier (a pseudonym or a
    masked name is one category per person)."""
    return [c for c in view.emitted_columns if c.privacy_class != DIRECT]


def _view_models(
    view: ViewPlan, d: Dialect, engine: Any, target: str, source: Sql, released: Sql, before: Sql
) -> tuple[tuple[ModelScore, ...], str]:
    """Trained on the view's rows and tested on real rows as the view transforms them (before
    suppression); the ceiling trained and tested on the raw columns."""
    from collections import Counter

    from sqlanon.review.conformance import canonical_value

    cols = model_columns(view)

    def combos(query: Sql, names: list[str]) -> Counter[tuple[Any, ...]]:
        out: Counter[tuple[Any, ...]] = Counter()
        sql = d.statement("utility_combinations", query, [d.ident(n) for n in names]).text
        for row in engine.query(sql):
            out[tuple(canonical_value(v) for v in row[:-1])] += int(row[-1])
        return out

    outputs = [c.output for c in cols]
    at = outputs.index(target)
    found, note, _ = scores(
        target,
        at,
        ("view", combos(released, outputs)),
        combos(before, outputs),
        combos(source, [c.sources[0] for c in cols]),
    )
    if found:
        note += (
            "; the view-trained model is tested on the held-out rows as the view transforms them"
        )
    return found, note


def _order(engine: Any, d: Dialect, view: ViewPlan, c: ColumnStep) -> tuple[float | None, int]:
    """Over the rows before suppression: the raw column beside the transformed one."""
    pair = replace(view, columns=(c.raw_copy("_sqlanon_raw"), c), k_anonymity=None)
    sql = d.statement(
        "utility_order", view_query(pair, d), d.ident("_sqlanon_raw"), d.ident(c.output)
    ).text
    rho, violations = _one(engine, sql)
    return _float(rho), int(violations or 0)


def _is_numeric(live: str | None, logical: str | None) -> bool:
    """The live column type decides (an undeclared `keep` is planned as text); the plan's
    logical type only where the engine cannot say."""
    if live:
        return engine_family(live) == "number"
    return logical in NUMERIC_TYPES


def _numeric_stats(engine: Any, d: Dialect, query: Any, x: Any) -> Stats:
    n, nonnull, mean, std, q1, q2, q3 = _one(engine, d.statement("utility_numeric", query, x).text)
    return Stats(
        int(n),
        int(n) - int(nonnull),
        None,
        _float(mean),
        _float(std),
        (_float(q1), _float(q2), _float(q3)),
    )


def _value_stats(engine: Any, d: Dialect, query: Any, x: Any) -> Stats:
    n, nonnull, distinct = _one(engine, d.statement("utility_values", query, x).text)
    return Stats(int(n), int(n) - int(nonnull), int(distinct))


HISTOGRAM_BINS = 20  # numeric columns: equal-width bins over both sides' range
HISTOGRAM_TOP = 15  # other columns: the most frequent values, the rest as "(other)"

Histogram = tuple[tuple[str, float, float], ...]  # (label, share left, share right)


def _distance(
    engine: Any, d: Dialect, left: Any, xl: Any, right: Any, xr: Any, numeric: bool
) -> tuple[float | None, Histogram]:
    """Kolmogorov–Smirnov (largest CDF gap) for numbers, total variation (half the L1 distance
    of the value shares) otherwise; and a small histogram of both sides for the report. One
    row per distinct value comes back (the KS needs them in order)."""
    sql = d.statement("utility_shares", left, xl, right, xr, numeric=numeric).text
    rows = [(v, int(a), int(b)) for v, a, b in engine.query(sql)]
    na, nb = sum(a for _, a, _ in rows), sum(b for _, _, b in rows)
    if not na or not nb:
        return None, ()
    if numeric:
        gap = ca = cb = 0.0
        for _, a, b in rows:
            ca, cb = ca + a / na, cb + b / nb
            gap = max(gap, abs(ca - cb))
        return gap, _bins(rows, na, nb)
    tv = sum(abs(a / na - b / nb) for _, a, b in rows) / 2
    dates = [v for v, _, _ in rows if v is not None]
    if len(rows) > HISTOGRAM_TOP + 1 and dates and all(isinstance(v, dt.date) for v in dates):
        return tv, _date_bins(rows, na, nb)
    return tv, _top(rows, na, nb)


def _bins(rows: list[tuple[Any, int, int]], na: int, nb: int) -> Histogram:
    """Both sides on the same bins. Where the released side has few distinct values (a bucket
    or an age: its lower bounds), those values are the bins, so a raw value falls in the bucket
    it was released as and the bars read like the view; otherwise equal bins of a round width
    (1, 2 or 5 × a power of ten) starting at a multiple of it, so labels read 450, not
    -449.966. NULLs are not drawn (the NULL share is in the table)."""
    present = [(float(v), a, b) for v, a, b in rows if v is not None]
    if not present:
        return ()
    released = sorted({v for v, _, b in present if b})
    if 1 < len(released) <= 2 * HISTOGRAM_BINS:
        edges = released
    else:
        lo, hi = min(v for v, _, _ in present), max(v for v, _, _ in present)
        width = _round_width((hi - lo) / HISTOGRAM_BINS)
        start = math.floor(lo / width) * width
        edges = [start + i * width for i in range(int((hi - start) // width) + 1)]
    counts = [[0, 0] for _ in edges]
    for v, a, b in present:
        i = max(bisect.bisect_right(edges, v) - 1, 0)
        counts[i][0] += a
        counts[i][1] += b
    return tuple((_label(e), a / na, b / nb) for e, (a, b) in zip(edges, counts, strict=True))


def _round_width(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _label(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else f"{x:.6g}"


def _date_bins(rows: list[tuple[Any, int, int]], na: int, nb: int) -> Histogram:
    """Dates in calendar order, per decade, year, month or day as their span asks (not the 15
    most frequent days and a large "(other)")."""
    present = [(v, a, b) for v, a, b in rows if v is not None]
    span = (max(v for v, _, _ in present) - min(v for v, _, _ in present)).days

    def label(v: dt.date) -> str:
        if span > 40 * 366:
            return f"{v.year // 10 * 10}s"
        if span > 3 * 366:
            return str(v.year)
        return f"{v.year}-{v.month:02d}" if span > 62 else v.isoformat()[:10]

    counts: dict[str, list[int]] = {}
    for v, a, b in sorted(present, key=lambda r: r[0]):
        pair = counts.setdefault(label(v), [0, 0])
        pair[0] += a
        pair[1] += b
    return tuple((key, a / na, b / nb) for key, (a, b) in counts.items())


def _top(rows: list[tuple[Any, int, int]], na: int, nb: int) -> Histogram:
    ranked = sorted(rows, key=lambda r: (-(r[1] + r[2]), str(r[0])))
    shown = [
        ("NULL" if v is None else str(v), a / na, b / nb) for v, a, b in ranked[:HISTOGRAM_TOP]
    ]
    rest = ranked[HISTOGRAM_TOP:]
    if rest:
        shown.append(("(other)", sum(a for _, a, _ in rest) / na, sum(b for _, _, b in rest) / nb))
    return tuple(shown)


def _correlation(
    engine: Any, d: Dialect, source: Any, released: Any, a: ColumnStep, b: ColumnStep
) -> Correlation:
    raw = _one(
        engine,
        d.statement("utility_corr", source, d.ident(a.sources[0]), d.ident(b.sources[0])).text,
    )[0]
    out = _one(
        engine, d.statement("utility_corr", released, d.ident(a.output), d.ident(b.output)).text
    )[0]
    return Correlation(a.output, b.output, raw, out)


def _view_check(
    u: UtilityCheck,
    r: ViewUtility,
    view: ViewPlan,
    d: Dialect,
    engine: Any,
    source: Any,
    released: Any,
) -> CheckResult:
    measured: float | None
    by_name = {c.column: c for c in r.columns}
    if u.kind == "suppressed":
        measured = r.suppressed_share
    elif u.kind == "mean_shift":
        measured = by_name[u.refs[0]].mean_shift
    elif u.kind == "distance":
        measured = by_name[u.refs[0]].distance
    else:  # correlation
        found = next((c for c in r.correlations if {c.a, c.b} == set(u.refs)), None)
        if found is None:  # a pair with a non-numeric side: correlate what the engine can
            steps = {c.output: c for c in view.emitted_columns}
            found = _correlation(engine, d, source, released, steps[u.refs[0]], steps[u.refs[1]])
        measured = found.delta
    return verdict(u, measured)


def verdict(u: UtilityCheck, measured: float | None) -> CheckResult:
    """A declared check against what was measured (None: not measurable, a failure)."""
    limit = float(u.limit)
    ok = measured is not None and measured <= limit + 1e-12
    return CheckResult(u.describe(), limit, measured, ok)


# -- releases -------------------------------------------------------------------------------


def measure_release(r: ReleasePlan, d: Dialect, engine: Any, epoch: int | None) -> ReleaseUtility:
    """Noisy cells of one epoch against the plain GROUP BY of the source (no bounds, clamps or
    noise): the error an analyst sees, bias of the contribution bounds included."""
    target = d.relation(r.target)
    if not live_types(engine, r.target):
        epoch = None  # the release table is not there yet: no refresh has run
    elif epoch is None:
        epoch_row = _one(engine, d.statement("max_epoch", target).text)
        epoch = None if epoch_row[0] is None else int(epoch_row[0])
    noisy: dict[tuple[Any, ...], dict[str, Any]] = {}  # group values → the row by column
    names = [n for n, _ in output_columns(r)]
    if epoch is not None:
        sql = d.statement("release_epoch", target, d.number(epoch)).text
        for row in engine.query(sql):
            values = dict(zip(names, row, strict=True))
            noisy[tuple(values[g.output] for g in r.group_by)] = values
    truth = _release_truth(r, d, engine)
    errors = []
    for i, m in enumerate(r.measures):
        rel, absolute, inside = [], [], 0
        cells = 0
        for key, values in noisy.items():
            if key not in truth:
                continue
            true, got = truth[key][i], values[m.name]
            if true is None or got is None:
                continue
            cells += 1
            true_f, got_f = float(true), float(got)
            absolute.append(abs(got_f - true_f))
            if true_f != 0:
                rel.append(abs(got_f - true_f) / abs(true_f))
            low, high = values[f"{m.name}_ci_low"], values[f"{m.name}_ci_high"]
            inside += int(float(low) <= true_f <= float(high))
        errors.append(
            MeasureError(
                m.name,
                cells,
                statistics.median(rel) if rel else None,
                statistics.fmean(absolute) if absolute else None,
                inside / cells if cells else None,
            )
        )
    by_measure = {e.measure: e for e in errors}
    checks = tuple(verdict(u, by_measure[u.refs[0]].median_relative_error) for u in r.utility)
    bounds = (
        f"at most {r.max_groups_per_unit} group(s) and "
        f"{r.max_rows_per_unit_per_group} row(s) per group per unit"
        + (f", {r.max_rows_per_unit} row(s) in all" if r.max_rows_per_unit else "")
    )
    return ReleaseUtility(
        ".".join(r.target),
        epoch,
        len(truth),
        len(noisy),
        tuple(errors),
        checks,
        float(r.epsilon),
        float(r.delta),
        r.privacy_unit,
        bounds,
    )


def _release_truth(
    r: ReleasePlan, d: Dialect, engine: Any
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    ctx = LowerContext(d, {})

    src = qualifier(d, SOURCE_ALIAS)
    group_exprs = [REGISTRY[g.transform].lower(ctx, src(g.sources[0]), g) for g in r.group_by]
    group_names = [d.ident(g.output) for g in r.group_by]
    inputs = [
        measure_input(m.column, d, SOURCE_ALIAS) if m.column else d.number(1) for m in r.measures
    ]
    aggs = tuple(m.agg for m in r.measures)
    sql = d.statement(
        "utility_release_truth",
        source_sql(r.source, d),
        group_exprs,
        group_names,
        src(r.privacy_unit),
        inputs,
        aggs=aggs,
    ).text
    n = len(r.group_by)
    return {tuple(row[:n]): tuple(row[n:]) for row in engine.query(sql)}
