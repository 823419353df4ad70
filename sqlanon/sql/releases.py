"""A release plan → the SQL of one refresh, from the dialect's templates.

The noise of each (group, component) is drawn from HMAC(noise key, message). The message names
the refresh's nonce — issued by the ledger in the refresh's own transaction, never reused —
and everything that shapes the mechanism (policy, release, target, a digest of ε shares,
sensitivities, grids, bounds and groups), the epoch, the group and the component. It never
names the data: noise is independent of the values, a re-run is a new release with fresh noise
(and is charged), and every engine computes the same numbers for the same nonce. No engine
RANDOM() is used anywhere. See docs/dp.md for the threat model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from fractions import Fraction

from sqlanon.plan.mechanism import float_steps, on_grid
from sqlanon.plan.model import (
    ColumnStep,
    MeasurePlan,
    NoiseComponent,
    ReleasePlan,
    SyntheticPlan,
    digest_of,
)
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.query import measure_input, source_sql
from sqlanon.sql.shapes import Sql
from sqlanon.sql.views import (
    KEYS_ALIAS,
    SOURCE_ALIAS,
    Statement,
    grant_statements,
    key_row,
    qualifier,
    schema_statements,
)
from sqlanon.transforms import REGISTRY, LowerContext
from sqlanon.transforms.common import NOISE_TAG, RANK_TAG, canonical, keyed_hex

MESSAGE_VERSION = "2"  # of the noise message's layout (docs/dp.md#the-noise-message)
TWO_52 = 4503599627370496
UNIT = "_sqlanon_unit"
# budget sums are floats in the ledger: decimal ε shares may add up a hair above the budget
BUDGET_SLACK = Fraction(1, 10**9)


def mechanism_digest(r: ReleasePlan) -> str:
    """A digest of everything that shapes the release's noise (ε shares, sensitivities, grids,
    bounds, groups, measures, source, target, key), not of what does not (description, grants,
    file name, budget): part of every noise message, so an edited mechanism never shares a
    message with the old one."""
    shaped = (
        r.policy,
        r.name,
        r.source,
        r.target,
        r.privacy_unit,
        r.unit_type,
        r.group_by,
        r.public_groups,
        r.max_groups_per_unit,
        r.max_rows_per_unit_per_group,
        r.max_rows_per_unit,
        r.measures,
        r.selection,
        r.epsilon,
        r.delta,
        r.key,
    )
    return digest_of(shaped)[:32]


def _number(d: Dialect, value: Fraction | int) -> Sql:
    """An exact decimal literal: the fractions here (grid steps, clamp bounds and their
    midpoints) have power-of-two or power-of-ten denominators, so their decimals end."""
    from decimal import Decimal

    if isinstance(value, int) or (isinstance(value, Fraction) and value.denominator == 1):
        return d.number(int(value))
    return d.number(Decimal(value.numerator) / Decimal(value.denominator))


def _float(d: Dialect, value: float) -> Sql:
    from decimal import Decimal

    return d.number(Decimal(repr(value)))


def output_columns(r: ReleasePlan) -> list[tuple[str, str]]:
    """(name, logical type) of the release table."""
    cols = [("epoch", "integer")]
    cols += [(g.output, g.output_type or "text") for g in r.group_by]
    for m in r.measures:
        kind = "integer" if m.agg in ("count_units", "count") else "float"
        cols += [
            (m.name, kind),
            (f"{m.name}_ci_low", kind),
            (f"{m.name}_ci_high", kind),
            (f"{m.name}_epsilon", "float"),
            (f"{m.name}_delta", "float"),
        ]
    return cols


def _component_id(m: MeasurePlan | None, c: NoiseComponent) -> str:
    return "units" if m is None else f"{m.name}.{c.name}"


def release_query(
    r: ReleasePlan, d: Dialect, epoch: Sql, noise: bool = True, nonce: Sql | None = None
) -> Sql:
    """The SELECT computing one epoch's rows of the release table. The noise is drawn for
    `nonce` (by default the nonce the ledger issued to this refresh: the ledger row must be
    written first, in the same transaction). With noise=False every noise draw is 0 and every
    group is kept: the true, contribution-bounded values, for tests and for utility reports
    (never for release)."""
    if nonce is None:
        nonce = ledger_nonce(r, d) if noise else d.string("")
    # the epoch and nonce are computed once, beside the key
    extra = ((epoch, "_sqlanon_epoch"), (nonce, "_sqlanon_nonce"))
    key_query, pad_names = key_row([r.key], r.key_table, d, extra=extra)
    pads = pad_names[r.key]  # (inner, outer) columns of the key row, carried to the hash step
    kcol = qualifier(d, KEYS_ALIAS)
    ctx = LowerContext(d, {r.key: (kcol(pads[0]), kcol(pads[1]))})
    src = qualifier(d, SOURCE_ALIAS)
    groups = [d.ident(f"_sqlanon_g{i}") for i in range(len(r.group_by))]

    # rows: unit, group keys, clamped measure inputs (NULL, NaN and unparsable text skipped)
    # in whole steps of their sum's grid, so every sum after this is an exact integer. Each
    # input is read as a number once, beneath (a sum and an avg of one column share it)
    in_items = [src(r.privacy_unit)] + [
        REGISTRY[g.transform].lower(ctx, src(g.sources[0]), g) for g in r.group_by
    ]
    in_names = [d.ident(UNIT), *groups]
    row_items: list[Sql] = []  # beside the unit and group keys
    row_names: list[Sql] = []
    inputs = {}
    # the steps counted for a measure: the first of its input's, which are NULL on the same
    # rows — PostgreSQL, which computes each reference anew, then computes one COUNT per input
    present: dict[str, Sql] = {}
    numbers: dict[Sql, Sql] = {}  # an input read as a number → its name
    firsts: dict[Sql, Sql] = {}  # an input read as a number → its first measure's steps
    for i, m in enumerate(r.measures):
        if m.column is not None and m.clamp is not None:
            number = _input_number(d, measure_input(m.column, d, SOURCE_ALIAS), m)
            if number not in numbers:
                numbers[number] = d.ident(f"_sqlanon_in{i}")
                in_items.append(number)
                in_names.append(numbers[number])
            name = d.ident(f"_sqlanon_x{i}")
            row_items.append(_input_steps(d, numbers[number], m))
            row_names.append(name)
            inputs[m.name] = name
            present[m.name] = firsts.setdefault(number, name)

    # partials: per unit and group, rows capped; measure sums clamped once rows are allowed
    rmax = d.number(r.max_rows_per_unit_per_group)
    partial_items: list[Sql] = [d.ident(UNIT), *groups]
    partial_names: list[Sql] = [d.ident(UNIT), *groups]
    partial_items.append(d.prim("least", [d.prim("count_star"), rmax]))
    partial_names.append(d.ident("_sqlanon_rows"))
    # the raw rows and counts, which the per-group sums took from every row and give back
    partial_items.append(d.prim("count_star"))
    partial_names.append(d.ident("_sqlanon_raw"))
    allowed = d.ident("_sqlanon_a")
    limited_items: list[Sql] = [d.ident(UNIT), *groups, allowed]
    limited_names: list[Sql] = [d.ident(UNIT), *groups, d.ident("_sqlanon_rows")]
    sums: dict[int, tuple[Sql, Sql]] = {}
    for i, m in enumerate(r.measures):
        if m.name not in inputs:
            continue
        assert m.clamp is not None
        x, numbers_of = inputs[m.name], d.prim("count", present[m.name])
        s_name, n_name = d.ident(f"_sqlanon_s{i}"), d.ident(f"_sqlanon_n{i}")
        partial_items += [
            d.prim("coalesce", [d.prim("int_sum", x), d.number(0)]),
            d.prim("least", [numbers_of, rmax]),
            numbers_of,
        ]
        partial_names += [s_name, n_name, d.ident(f"_sqlanon_r{i}")]
        # the unit's allowed rows of this group bound its partial sum: n × [qlo, qhi] steps
        n = d.prim("least", [n_name, allowed])
        lo, hi = (d.number(q) for q in _grid_ends(m))
        bounded = d.prim(
            "least", [d.prim("greatest", [s_name, d.prim("mul", n, lo)]), d.prim("mul", n, hi)]
        )
        limited_items += [bounded, n]
        limited_names += [s_name, n_name]
        sums[i] = (s_name, n_name)

    # units over a bound: groups in the order of a keyed hash of the unit and the group, kept
    # while at most max_groups_per_unit and max_rows_per_unit allow
    p = "_sqlanon_p"
    rank_text = _message(
        d,
        [canonical(ctx, d.qualified((p, UNIT)), r.unit_type)]
        + [
            d.prim(
                "canonical_text", d.qualified((p, f"_sqlanon_g{i}")), type=g.output_type or "text"
            )
            for i, g in enumerate(r.group_by)
        ],
    )
    rank = keyed_hex(ctx, rank_text, r.key, RANK_TAG)
    fits = d.prim("le", d.ident("_sqlanon_ng"), d.number(r.max_groups_per_unit))
    rows = d.ident("_sqlanon_rows")
    allowance = rows
    if r.max_rows_per_unit is not None:
        total = d.number(r.max_rows_per_unit)
        fits = d.prim("all_of", [fits, d.prim("le", d.ident("_sqlanon_nr"), total)])
        before = d.prim("sub", d.ident("_sqlanon_cum"), rows)  # rows of earlier groups
        allowance = d.prim(
            "greatest", [d.number(0), d.prim("least", [rows, d.prim("sub", total, before)])]
        )

    # heavy units: more rows than the smallest bound, so only they can pass one. The others
    # keep every row; their sums are the rows' own, taken per group without a partial
    smallest = min(
        r.max_rows_per_unit_per_group,
        r.max_groups_per_unit,
        *([r.max_rows_per_unit] if r.max_rows_per_unit is not None else []),
    )
    # units per group are counted from the (unit, group) pairs; where nothing reads them,
    # there are no pairs, and the heavy units are a HAVING over each unit's rows
    by_window = d.features.heavy_by_window and r.counts_units
    unit_total = (
        d.prim("rows_of_partition", d.ident(UNIT))  # each pair reads its unit's rows (a window)
        if by_window
        else d.prim("count_star")  # a HAVING over the unit's rows
    )
    heavy = d.prim("gt", unit_total, d.number(smallest))

    # per group: four parts added up, each (units, rows, per measure: sum, count) — every
    # unit's pairs, every row, minus the heavy units' raw partials, plus their bounded ones
    def summed(x: Sql, sign: int = 1) -> Sql:
        value = d.prim("coalesce", [d.prim("int_sum", x), d.number(0)])
        return value if sign > 0 else d.prim("sub", d.number(0), value)

    zero, count_star = d.number(0), d.prim("count_star")
    # units per group: its pairs, or the pairs' counts kept per group and heavy unit (spread)
    units = d.prim("int_sum", d.ident("_sqlanon_np")) if by_window else count_star
    parts: list[list[Sql]] = [
        [units, zero],
        [zero, count_star],
        [d.prim("sub", zero, count_star), summed(d.ident("_sqlanon_raw"), -1)],
        [count_star, summed(d.ident("_sqlanon_rows"))],
    ]
    totals = ["_sqlanon_units", "_sqlanon_rows"]
    for i, (s_name, n_name) in sorted(sums.items()):
        measure = r.measures[i].name
        parts[0] += [zero, zero]
        parts[1] += [summed(inputs[measure]), d.prim("count", present[measure])]
        parts[2] += [summed(s_name, -1), summed(d.ident(f"_sqlanon_r{i}"), -1)]
        parts[3] += [summed(s_name), summed(n_name)]
        totals += [f"_sqlanon_s{i}", f"_sqlanon_n{i}"]
    if not r.counts_units:  # no pairs: the first part goes, and each other part's units
        parts = [[], *(part[1:] for part in parts[1:])]
        totals = totals[1:]
    aggregates: list[Sql] = list(groups)
    aggregates += [d.prim("int_sum", d.ident(t)) for t in totals]
    aggregate_names: list[Sql] = list(groups) + [d.ident(t) for t in totals]

    # public groups: every listed group appears, empty ones with zero aggregates
    public_rows: list[Sql] = []
    public_names: list[Sql] = []
    joined_items: list[Sql] = []
    joined_names: list[Sql] = []
    join_conditions: list[Sql] = []
    if r.public_groups is not None:
        public_names = [d.ident(f"_sqlanon_v{i}") for i in range(len(r.group_by))]
        for row in r.public_groups:
            public_rows += [d.string(v) for v in row]
        for i, g in enumerate(r.group_by):
            pg = d.qualified(("_sqlanon_pg", f"_sqlanon_g{i}"))
            pub = d.qualified(("_sqlanon_pub", f"_sqlanon_v{i}"))
            joined_items.append(_typed(d, pub, g))
            join_conditions.append(
                d.prim("eq", d.prim("canonical_text", pg, type=g.output_type or "text"), pub)
            )
        joined_names = list(groups)
        for total_name in totals:
            joined_items.append(
                d.prim("coalesce", [d.qualified(("_sqlanon_pg", total_name)), d.number(0)])
            )
            joined_names.append(d.ident(total_name))

    # hashed: the true value of each component on its grid, and the group's noise message up
    # to the component (the key's pads carried along for the next step)
    g_alias = "_sqlanon_g"
    gcol = qualifier(d, g_alias)
    group_texts = [
        d.prim("canonical_text", gcol(f"_sqlanon_g{i}"), type=g.output_type or "text")
        for i, g in enumerate(r.group_by)
    ]
    components = _components(r)
    hashed_items, hashed_names = _carried(d, gcol, kcol("_sqlanon_epoch"), groups)
    for cid, _comp, true_name in components:
        # a sum is already in whole grid steps (each row was put on the grid)
        hashed_items.append(d.prim("cast", gcol(true_name), to="integer"))
        hashed_names.append(d.ident(f"_sqlanon_t_{_slug(cid)}"))
    message = _message(
        d,
        [
            MESSAGE_VERSION,
            r.policy,
            r.name,
            r.target_name,
            mechanism_digest(r),
            kcol("_sqlanon_nonce"),
            d.prim("canonical_text", kcol("_sqlanon_epoch"), type="integer"),
            *group_texts,
        ],
    )
    hashed_items.append(message)
    hashed_names.append(d.ident("_sqlanon_m"))
    for pad in pads:
        hashed_items.append(kcol(pad))
        hashed_names.append(d.ident(pad))

    # keyed: per component, HMAC(noise key, "noise|" + message + component)
    h_alias = "_sqlanon_h"
    hcol = qualifier(d, h_alias)
    keyed_ctx = LowerContext(d, {r.key: (hcol(pads[0]), hcol(pads[1]))})
    keyed_items, keyed_names = _carried(d, hcol, hcol("_sqlanon_epoch"), groups)
    for cid, _, _ in components:
        slug = _slug(cid)
        text = d.prim("concat", [hcol("_sqlanon_m"), d.string(f"|{len(cid)}:{cid}")])
        keyed_items += [hcol(f"_sqlanon_t_{slug}"), keyed_hex(keyed_ctx, text, r.key, NOISE_TAG)]
        keyed_names += [d.ident(f"_sqlanon_t_{slug}"), d.ident(f"_sqlanon_h_{slug}")]

    # noised: Z = G1 - G2, Gi = floor(ln ui / ln p)
    y_alias = "_sqlanon_y"
    ycol = qualifier(d, y_alias)
    noised_items, noised_names = _carried(d, ycol, ycol("_sqlanon_epoch"), groups)
    for cid, comp, _ in components:
        slug = _slug(cid)
        h = ycol(f"_sqlanon_h_{slug}")
        ln_p = d.noted(_float(d, comp.ln_p), "ln p = -epsilon / sensitivity")
        draws = [
            d.prim("floor", d.prim("div", d.prim("ln", _uniform(d, h, start)), ln_p))
            for start in (1, 14)
        ]
        noised_items += [
            ycol(f"_sqlanon_t_{slug}"),
            d.prim("cast", d.prim("sub", draws[0], draws[1]), to="integer")
            if noise
            else d.number(0),
        ]
        noised_names += [d.ident(f"_sqlanon_t_{slug}"), d.ident(f"_sqlanon_z_{slug}")]

    # outputs
    n_alias = "_sqlanon_n"
    ncol = qualifier(d, n_alias)
    outputs: list[Sql] = [ncol("_sqlanon_epoch")]
    outputs += [ncol(f"_sqlanon_g{i}") for i in range(len(r.group_by))]
    output_names = [d.ident(name) for name, _ in output_columns(r)]
    by_id = {cid: comp for cid, comp, _ in components}
    for m in r.measures:
        outputs += _measure_outputs(d, m, by_id, ncol)
        outputs += [
            d.prim("cast", _float(d, float(m.epsilon)), to="float"),
            d.prim("cast", _float(d, float(m.delta)), to="float"),
        ]

    filters = [d.prim("not_null", src(r.privacy_unit))]
    if r.selection is not None and noise:
        slug = _slug(r.selection.reads)
        counted = d.prim("add", ncol(f"_sqlanon_t_{slug}"), ncol(f"_sqlanon_z_{slug}"))
        selected = d.prim("gt", counted, d.number(r.selection.threshold))
    else:
        selected = d.prim("true_")
    return d.statement(
        "dp_release_query",
        source_sql(r.source, d),
        in_items,
        in_names,
        row_items,
        row_names,
        partial_items,
        partial_names,
        key_query[0],
        rank,
        fits,
        allowance,
        limited_items,
        limited_names,
        d.number(r.max_groups_per_unit),
        groups,
        aggregates,
        aggregate_names,
        public_rows,
        public_names,
        joined_items,
        joined_names,
        join_conditions,
        hashed_items,
        hashed_names,
        keyed_items,
        keyed_names,
        noised_items,
        noised_names,
        outputs,
        output_names,
        filters,
        selected,
        d.prim("int_sum", d.ident("_sqlanon_rows")),  # a unit's rows over its groups
        heavy,
        *parts,
    )


def _carried(
    d: Dialect, col: Callable[[str], Sql], epoch: Sql, groups: list[Sql]
) -> tuple[list[Sql], list[Sql]]:
    """The group columns and the epoch, carried from one step of the query to the next."""
    items = [col(f"_sqlanon_g{i}") for i in range(len(groups))] + [epoch]
    return items, [*groups, d.ident("_sqlanon_epoch")]


def _grid_ends(m: MeasurePlan) -> tuple[int, int]:
    """[qlo, qhi]: the clamp's ends (centred for `avg`) in whole steps of the measure's grid —
    where every row's steps lie, and what bounds a unit's partial sum per allowed row."""
    assert m.clamp is not None
    grid = m.components[0].granularity
    lo, hi = (on_grid(Fraction(c - m.center), grid) for c in m.clamp)
    return lo, hi


def _input_number(d: Dialect, x: Sql, m: MeasurePlan) -> Sql:
    """A measure's input as a double: text parsed (NULL where it is not a number), any other
    type cast."""
    if m.input_type == "text":
        return d.prim("parse_number", x)
    return d.prim("cast", x, to="float")


def _input_steps(d: Dialect, value: Sql, m: MeasurePlan) -> Sql:
    """A measure's input (`value`, a double) clamped to [lo, hi] (centred for `avg`) in whole
    steps of its grid, ⌊x/g + ½⌋ as an integer: g is a power of two, so x/g is exact and
    every engine rounds the same value the same way. NULL (skipped by sums, not counted) when
    the input is NULL, NaN, or text that is not a number (docs/dp.md#measure-inputs);
    ±infinity clamps to the bounds. No value can make the refresh fail.

    The arms test the common case first: a value within the bounds passes one test of two
    comparisons, and NULL fails every arm (no IS NULL test of its own); NaN is tested only
    where a value is beyond a bound. PostgreSQL re-evaluates the input at each reference: with
    this order, and one COUNT per input, its pass over every row takes a third less than with
    the NULL and NaN tests ahead (docs/benchmarks.md dp_release, session 15).

    Every step lies in [qlo, qhi], the clamp's ends on the grid — the per-group sums of units
    within every bound rely on it, never clamping a partial sum. Rounding is monotone, so it
    is enough that the clamp's ends land there as the engines compute them (in doubles);
    where a bound or center has no exact double and an end rounds one step out, the steps
    are clamped to [qlo, qhi] in the SQL too.

    A value beyond a bound takes that end's steps, a constant computed here as the engines
    compute it (float_steps): one comparison rather than LEAST(GREATEST(…)), which DuckDB and
    PostgreSQL evaluate 25-35 % slower per row (docs/benchmarks.md dp_release), and the
    reviewer reads the step range off the SQL."""
    assert m.clamp is not None
    center = float(m.center)
    grid = m.components[0].granularity
    inner = d.prim("sub", value, _number(d, Fraction(m.center))) if m.center else value
    half_up = d.prim("add", d.prim("div", inner, _number(d, grid)), _number(d, Fraction(1, 2)))
    steps = d.prim("cast", d.prim("floor", half_up), to="integer")
    qlo, qhi = _grid_ends(m)
    end_lo, end_hi = (float_steps(float(c), center, grid) for c in m.clamp)
    if end_lo < qlo or end_hi > qhi:
        steps = d.prim("least", [d.prim("greatest", [steps, d.number(qlo)]), d.number(qhi)])
    below, above = (min(max(e, qlo), qhi) for e in (end_lo, end_hi))
    lo, hi = _number(d, Fraction(m.clamp[0])), _number(d, Fraction(m.clamp[1]))
    inside = d.prim("all_of", [d.prim("ge", value, lo), d.prim("le", value, hi)])
    # NaN fails the first arm on every engine, and the other two say "not NaN": engines order
    # it above every number (PostgreSQL, DuckDB, Snowflake, Spark), compare it false (BigQuery)
    # or below (others), and it may come from a float, PostgreSQL's NUMERIC or a column
    # declared of another type. Whether the steps are NULL then depends on the value alone:
    # measures of one input count one column of steps
    a_number = d.prim("not_", d.prim("is_nan", value))
    under = d.prim("all_of", [d.prim("lt", value, lo), a_number])
    beyond = d.prim("all_of", [d.prim("gt", value, hi), a_number])
    arms = [inside, steps, under, d.number(below), beyond, d.number(above)]
    return d.prim("case", [*arms, d.prim("null")])


def _components(r: ReleasePlan) -> list[tuple[str, NoiseComponent, str]]:
    """(component id, noise, the per-group column holding its true value)."""
    out: list[tuple[str, NoiseComponent, str]] = []
    if r.selection is not None and r.selection.noise is not None:
        # the selection's own count, of units or of bounded rows
        own = r.selection.noise
        out.append((r.selection.reads, own, f"_sqlanon_{own.name}"))
    units = next((m for m in r.measures if m.agg == "count_units"), None)
    if units is not None:  # every count_units measure is released from one draw
        out.append(("units", units.components[0], "_sqlanon_units"))
    for i, m in enumerate(r.measures):
        for c in m.components:
            if m.agg == "count_units":
                continue
            if c.name == "rows":
                true = "_sqlanon_rows" if m.agg == "count" else f"_sqlanon_n{i}"
            else:
                true = f"_sqlanon_s{i}"
            out.append((_component_id(m, c), c, true))
    return out


def _measure_outputs(d: Dialect, m: MeasurePlan, by_id, ncol) -> list[Sql]:  # type: ignore[no-untyped-def]
    def noisy(cid: str) -> tuple[Sql, NoiseComponent]:
        slug = _slug(cid)
        comp = by_id[cid]
        value = d.prim("add", ncol(f"_sqlanon_t_{slug}"), ncol(f"_sqlanon_z_{slug}"))
        return value, comp

    def scaled(value: Sql, comp: NoiseComponent) -> Sql:
        if comp.granularity == 1:
            return value
        return d.prim("mul", d.prim("cast", value, to="float"), _number(d, comp.granularity))

    if m.agg in ("count_units", "count", "sum"):
        cid = "units" if m.agg == "count_units" else _component_id(m, m.components[0])
        value, comp = noisy(cid)
        hw = d.number(comp.half_width)
        low = scaled(d.prim("sub", value, hw), comp)
        if m.clamp is None or m.clamp[0] >= 0:  # the truth is never negative: nor is the bound
            low = d.prim("greatest", [low, d.number(0)])
        return [scaled(value, comp), low, scaled(d.prim("add", value, hw), comp)]
    # avg: noisy sum / noisy count, clamped; the interval from both components' intervals
    assert m.clamp is not None
    s_val, s_comp = noisy(_component_id(m, m.components[0]))
    n_val, n_comp = noisy(_component_id(m, m.components[1]))
    lo, hi = _number(d, Fraction(m.clamp[0])), _number(d, Fraction(m.clamp[1]))

    def clamp(x: Sql) -> Sql:
        return d.prim("least", [d.prim("greatest", [x, lo]), hi])

    total = scaled(s_val, s_comp)
    center = _number(d, Fraction(m.center))

    def shifted(x: Sql) -> Sql:
        return d.prim("add", x, center) if m.center else x

    s_hw = d.prim("mul", d.number(s_comp.half_width), _number(d, s_comp.granularity))
    n_hw = d.number(n_comp.half_width)
    count = d.prim("cast", d.prim("greatest", [n_val, d.number(1)]), to="float")
    value = clamp(shifted(d.prim("div", total, count)))
    low_n = d.prim("cast", d.prim("sub", n_val, n_hw), to="float")
    high_n = d.prim("cast", d.prim("add", n_val, n_hw), to="float")
    corners = [
        d.prim("div", d.prim(op_s, total, s_hw), n)
        for op_s in ("sub", "add")
        for n in (low_n, high_n)
    ]
    too_few = d.prim("lt", d.prim("sub", n_val, n_hw), d.number(1))
    ci_low = d.prim("case", [too_few, lo, clamp(shifted(d.prim("least", corners)))])
    ci_high = d.prim("case", [too_few, hi, clamp(shifted(d.prim("greatest", corners)))])
    return [value, ci_low, ci_high]


def _uniform(d: Dialect, h: Sql, start: int) -> Sql:
    """(52-bit integer + 0.5) / 2^52: strictly inside (0, 1), so its logarithm is finite."""
    as_float = d.prim("cast", d.prim("hex_int", h, start=start), to="float")
    two_52 = d.noted(d.number(TWO_52), "2^52: 13 hex digits as a uniform in (0, 1)")
    return d.prim("div", d.prim("add", as_float, _number(d, Fraction(1, 2))), two_52)


def _message(d: Dialect, fields: Sequence[str | Sql]) -> Sql:
    """Fields as `length:text|…`, NULL as `-`: no two field lists give the same message.
    Constant fields (Python strings) are encoded here, once."""
    parts: list[str | Sql] = []
    for i, f in enumerate(fields):
        sep = "|" if i < len(fields) - 1 else ""
        if isinstance(f, str):
            parts.append(f"{len(f)}:{f}{sep}")
            continue
        length = d.prim("canonical_text", d.prim("char_length", f), type="integer")
        parts.append(
            d.prim("coalesce", [d.prim("concat", [length, d.string(":"), f]), d.string("-")])
        )
        if sep:
            parts.append(sep)
    merged: list[Sql] = []
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
            continue
        if text:
            merged.append(d.string(text))
            text = ""
        merged.append(part)
    if text:
        merged.append(d.string(text))
    return merged[0] if len(merged) == 1 else d.prim("concat", merged)


def _typed(d: Dialect, text: Sql, g: ColumnStep) -> Sql:
    """A public group's value (written as text in the policy) in the group column's type."""
    out = g.output_type or "text"
    return text if out == "text" else d.prim("cast", text, to=out)


def _slug(cid: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in cid)


def release_statements(
    r: ReleasePlan, d: Dialect, epoch: Sql | None = None, allow_overspend: bool = False
) -> list[Statement]:
    """One refresh: in one transaction, take the ledger's lock (where the engine has table
    locks), record the spend — refused when it would take the epoch over the budget, or when
    another release already writes this table — which issues the refresh's nonce, then replace
    the epoch's rows with a release drawn for that nonce."""
    if epoch is None:
        epoch = epoch_value(d)
    return refresh_statements(
        r, d, release_query(r, d, epoch), output_columns(r), epoch, allow_overspend
    )


def refresh_statements(
    r: ReleasePlan | SyntheticPlan,
    d: Dialect,
    query: Sql,
    cols: list[tuple[str, str]],
    epoch: Sql,
    allow_overspend: bool = False,
) -> list[Statement]:
    """The statements of one refresh of a release or a synthetic table whose epoch rows
    `query` computes (sqlanon/sql/synthetic.py)."""
    target = d.relation(r.target)
    names = [d.ident(n) for n, _ in cols]
    create = Statement(
        d.statement(
            "create_table_if_missing", target, names, column_types=tuple(t for _, t in cols)
        ).text
    )
    record = ledger_insert(r, d, epoch, allow_overspend)
    delete = Statement(
        d.statement("delete_where", target, d.prim("eq", d.ident("epoch"), epoch)).text
    )
    features = d.features
    if features.refresh_through_temp_table:
        inserts = [
            Statement(d.statement("epoch_rows", query).text),
            Statement(d.statement("insert_epoch_rows", target, names).text),
            Statement(d.statement("drop_epoch_rows").text),
        ]
    else:
        inserts = [Statement(d.statement("insert_query", target, names, query).text)]
    grants = grant_statements(r.target, r.grants, d, "table")
    schema = schema_statements(r.target, d)
    if features.transactions:
        begin, commit = Statement(d.statement("begin").text), Statement(d.statement("commit").text)
        lock = []
        if features.lock_table:
            lock = [Statement(d.statement("lock_ledger", d.number(ledger_lock_id(r.ledger))).text)]
        if features.refresh_planner_settings:
            lock += [Statement(d.statement(name).text) for name in ("no_jit", "free_gather")]
        if features.transactional_ddl:
            # created under the lock: two first refreshes do not race to create the table; the
            # grants commit with the rows, so a failed grant leaves nothing to retry around
            return [begin, *lock, *schema, create, record, delete, *inserts, *grants, commit]
        return [*schema, create, begin, *lock, record, delete, *inserts, commit, *grants]
    # no transaction to make the three one: the spend is recorded first, so a refresh that
    # fails after it is counted (conservatively) rather than released uncounted
    return [*schema, create, record, delete, *inserts, *grants]


def ledger_lock_id(ledger: tuple[str, ...]) -> int:
    """A signed 64-bit number naming a ledger's refresh lock (PostgreSQL advisory locks)."""
    digest = hashlib.sha256("\x1f".join(("sqlanon ledger", *ledger)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def epoch_value(d: Dialect) -> Sql:
    """The epoch of this refresh, a session setting (docs/dp.md); an error when unset."""
    return d.prim(
        "require",
        d.prim("epoch_parameter"),
        d.message("sqlanon: set the epoch of this refresh to a whole number (docs/dp.md)"),
        type="integer",
    )


REFUSED = "sqlanon: refresh refused"


def ledger_insert(
    r: ReleasePlan | SyntheticPlan, d: Dialect, epoch: Sql, allow_overspend: bool = False
) -> Statement:
    """The ledger row one refresh of `r` appends: what it spent, and the nonce its noise is
    drawn for (the ledger's next refresh number and the time). The row is refused — the
    statement fails, nothing is written — when the policy's spend in this epoch plus this
    refresh would exceed its budget (unless allowed, which the row records), or when the ledger
    shows another policy or release writing the same table."""
    b = r.budget
    ledger = ".".join(r.ledger)
    kind = "synthetic table" if isinstance(r, SyntheticPlan) else "release"
    over = d.message(
        f"{REFUSED}: {kind} '{r.name}' of policy '{r.policy}' would take this epoch's spend "
        f"over the budget (epsilon {float(b.epsilon)!r}, delta {float(b.delta)!r}); nothing "
        f"was written (see sqlanon budget, or the ledger {ledger})"
    )
    claimed = d.message(
        f"{REFUSED}: {r.target_name} is written by another release in the ledger {ledger} "
        "(a target table belongs to one policy's release); nothing was written"
    )
    n = qualifier(d, "_sqlanon_n")  # the ledger's summary row
    epsilon: Sql = _float(d, float(r.epsilon))
    if not allow_overspend:
        fits = d.prim(
            "all_of",
            [
                d.prim("le", n("spent_epsilon"), _number(d, b.epsilon - r.epsilon + BUDGET_SLACK)),
                d.prim("le", n("spent_delta"), _number(d, b.delta - r.delta + BUDGET_SLACK)),
            ],
        )
        checked = d.prim("case", [fits, epsilon, d.prim("null")])
        epsilon = d.prim("require", checked, over, type="float")
    unclaimed = d.prim("eq", n("claimed"), d.number(0))
    delta = d.prim(
        "require",
        d.prim("case", [unclaimed, _float(d, float(r.delta)), d.prim("null")]),
        claimed,
        type="float",
    )
    now = d.prim("cast", d.prim("current_timestamp"), to="timestamptz")
    nonce = d.prim(
        "concat",
        [
            d.prim("canonical_text", n("refresh"), type="integer"),
            d.string("@"),
            d.prim("canonical_text", now, type="timestamptz"),
        ],
    )
    items = [
        n("refresh"),
        n("epoch"),
        d.string(r.policy),
        d.string(r.name),
        d.string(r.target_name),
        epsilon,
        delta,
        d.prim("boolean_literal", value=allow_overspend),
        nonce,
        now,
    ]
    return Statement(
        d.statement(
            "dp_ledger_insert",
            d.relation(r.ledger),
            [d.ident(c) for c, _ in LEDGER_COLUMNS],
            items,
            epoch,
            d.string(r.policy),
            d.string(r.name),
            d.string(r.target_name),
        ).text
    )


def ledger_nonce(r: ReleasePlan | SyntheticPlan, d: Dialect) -> Sql:
    """The nonce the ledger issued to this refresh: its latest row for this release's target,
    written earlier in the same transaction (under the ledger's lock where there is one)."""
    return d.prim(
        "require",
        d.prim("ledger_nonce", d.relation(r.ledger), d.string(r.target_name)),
        d.message(f"{REFUSED}: no ledger row issued a nonce to this refresh of {r.target_name}"),
        type="text",
    )


# The ledger: one row per refresh. `refresh` numbers the rows (the nonce's counter); `nonce`
# is the text every noise message of that refresh names; `overspend` marks a refresh allowed
# over the budget (`apply --allow-overspend`).
LEDGER_COLUMNS = (
    ("refresh", "integer"),
    ("epoch", "integer"),
    ("policy", "text"),
    ("release", "text"),
    ("target", "text"),
    ("epsilon", "float"),
    ("delta", "float"),
    ("overspend", "boolean"),
    ("nonce", "text"),
    ("refreshed_at", "timestamptz"),
)


def ledger_statements(table: tuple[str, ...], d: Dialect) -> list[Statement]:
    out = schema_statements(table, d)
    out.append(
        Statement(
            d.statement(
                "create_ledger",
                d.relation(table),
                [d.ident(c) for c, _ in LEDGER_COLUMNS],
                column_types=tuple(t for _, t in LEDGER_COLUMNS),
            ).text
        )
    )
    return out
