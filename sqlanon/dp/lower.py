"""A release plan → the SQL of one refresh, from the dialect's templates.

The noise of each (group, component) is drawn from HMAC(noise key, message), the message
naming the policy, release, epoch, group, component and the true value on its grid: the same
data in the same epoch always gives the same answer (no averaging by re-querying), a new epoch
or changed data gives fresh, independent noise, and every engine computes the same numbers.
No engine RANDOM() is used anywhere.
"""

from __future__ import annotations

from fractions import Fraction

from ..dialect import Dialect
from ..lower import SOURCE_ALIAS, Statement, grant_statements, key_columns
from ..plan import ColumnStep, MeasurePlan, NoiseComponent, ReleasePlan
from ..sqlgen import Sql
from ..transforms import REGISTRY, LowerContext
from ..transforms.common import canonical, keyed_hex

MESSAGE_TAG = "sqlanon-dp-1"
TWO_52 = 4503599627370496
UNIT = "_sqlanon_unit"


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


def release_query(r: ReleasePlan, d: Dialect, epoch: Sql, noise: bool = True) -> Sql:
    """The SELECT computing one epoch's rows of the release table. With noise=False every
    noise draw is 0 and every group is kept: the true, contribution-bounded values, for tests
    and for utility reports (never for release)."""
    key_values, key_names, pads = key_columns([r.key], r.key_table, d)
    key_values.append(epoch)  # computed once, beside the key
    key_names.append(d.ident("_sqlanon_epoch"))
    ctx = LowerContext(d, pads)
    src = lambda c: d.qualified((SOURCE_ALIAS, c))  # noqa: E731
    groups = [d.ident(f"_sqlanon_g{i}") for i in range(len(r.group_by))]

    # rows: unit, group keys, clamped measure inputs
    row_items = [src(r.privacy_unit)] + [
        REGISTRY[g.transform].lower(ctx, src(g.sources[0]), g) for g in r.group_by
    ]
    row_names = [d.ident(UNIT), *groups]
    inputs = {}
    for i, m in enumerate(r.measures):
        if m.column is not None and m.clamp is not None:
            name = d.ident(f"_sqlanon_x{i}")
            value = d.prim("cast", src(m.column), to="float")
            clamped = d.prim(
                "least",
                [
                    d.prim("greatest", [value, _number(d, Fraction(m.clamp[0]))]),
                    _number(d, Fraction(m.clamp[1])),
                ],
            )
            if m.center:
                clamped = d.prim("sub", clamped, _number(d, Fraction(m.center)))
            row_items.append(clamped)
            row_names.append(name)
            inputs[m.name] = name

    # partials: per unit and group, rows capped; measure sums clamped once rows are allowed
    rmax = d.number(r.max_rows_per_unit_per_group)
    partial_items: list[Sql] = [d.ident(UNIT), *groups]
    partial_names: list[Sql] = [d.ident(UNIT), *groups]
    partial_items.append(d.prim("least", [d.prim("count_star"), rmax]))
    partial_names.append(d.ident("_sqlanon_rows"))
    allowed = d.ident("_sqlanon_a")
    limited_items: list[Sql] = [d.ident(UNIT), *groups, allowed]
    limited_names: list[Sql] = [d.ident(UNIT), *groups, d.ident("_sqlanon_rows")]
    sums: dict[int, tuple[Sql, Sql]] = {}
    for i, m in enumerate(r.measures):
        if m.name not in inputs:
            continue
        x = inputs[m.name]
        s_name, n_name = d.ident(f"_sqlanon_s{i}"), d.ident(f"_sqlanon_n{i}")
        partial_items += [
            d.prim("coalesce", [d.prim("sum", x), d.number(0)]),
            d.prim("least", [d.prim("count", x), rmax]),
        ]
        partial_names += [s_name, n_name]
        # the unit's allowed rows of this group bound its partial sum: n × [lo, hi]
        n = d.prim("least", [n_name, allowed])
        lo = _number(d, Fraction(m.clamp[0] - m.center))
        hi = _number(d, Fraction(m.clamp[1] - m.center))
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
        [d.string("rank"), canonical(ctx, d.qualified((p, UNIT)), r.unit_type)]
        + [
            d.prim(
                "canonical_text", d.qualified((p, f"_sqlanon_g{i}")), type=g.output_type or "text"
            )
            for i, g in enumerate(r.group_by)
        ],
    )
    rank = keyed_hex(ctx, rank_text, r.key)
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

    # per group
    aggregates: list[Sql] = list(groups)
    aggregate_names: list[Sql] = list(groups)
    aggregates += [d.prim("count_star"), d.prim("sum", d.ident("_sqlanon_rows"))]
    totals = ["_sqlanon_units", "_sqlanon_rows"]
    for i, (s_name, n_name) in sorted(sums.items()):
        aggregates += [d.prim("sum", s_name), d.prim("sum", n_name)]
        totals += [f"_sqlanon_s{i}", f"_sqlanon_n{i}"]
    aggregate_names += [d.ident(t) for t in totals]

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
        for name in totals:
            joined_items.append(
                d.prim("coalesce", [d.qualified(("_sqlanon_pg", name)), d.number(0)])
            )
            joined_names.append(d.ident(name))

    # hashed: the true value of each component on its grid, and its keyed hash
    g_alias = "_sqlanon_g"
    gcol = lambda name: d.qualified((g_alias, name))  # noqa: E731
    group_texts = [
        d.prim("canonical_text", gcol(f"_sqlanon_g{i}"), type=g.output_type or "text")
        for i, g in enumerate(r.group_by)
    ]
    components = _components(r)
    hashed_items: list[Sql] = [gcol(f"_sqlanon_g{i}") for i in range(len(r.group_by))]
    hashed_names: list[Sql] = list(groups)
    epoch_col = d.qualified(("_sqlanon_k", "_sqlanon_epoch"))
    hashed_items.append(epoch_col)
    hashed_names.append(d.ident("_sqlanon_epoch"))
    for cid, comp, true_name in components:
        true = gcol(true_name)
        if comp.name == "sum":  # onto the grid, rounding half up the same way on every engine
            true = d.prim(
                "floor",
                d.prim(
                    "add",
                    d.prim("div", true, _number(d, comp.granularity)),
                    _number(d, Fraction(1, 2)),
                ),
            )
        grid = d.prim("cast", true, to="integer")
        message = _message(
            d,
            [
                MESSAGE_TAG,
                r.policy,
                r.name,
                d.prim("canonical_text", epoch_col, type="integer"),
                *group_texts,
                cid,
                d.prim("canonical_text", grid, type="integer"),
            ],
        )
        hashed_items += [grid, keyed_hex(ctx, message, r.key)]
        hashed_names += [d.ident(f"_sqlanon_t_{_slug(cid)}"), d.ident(f"_sqlanon_h_{_slug(cid)}")]

    # noised: Z = G1 - G2, Gi = floor(ln ui / ln p)
    h_alias = "_sqlanon_h"
    noised_items: list[Sql] = [
        d.qualified((h_alias, f"_sqlanon_g{i}")) for i in range(len(r.group_by))
    ]
    noised_names: list[Sql] = list(groups)
    noised_items.append(d.qualified((h_alias, "_sqlanon_epoch")))
    noised_names.append(d.ident("_sqlanon_epoch"))
    for cid, comp, _ in components:
        slug = _slug(cid)
        h = d.qualified((h_alias, f"_sqlanon_h_{slug}"))
        ln_p = _float(d, comp.ln_p)
        draws = [
            d.prim("floor", d.prim("div", d.prim("ln", _uniform(d, h, start)), ln_p))
            for start in (1, 14)
        ]
        noised_items += [
            d.qualified((h_alias, f"_sqlanon_t_{slug}")),
            d.prim("cast", d.prim("sub", draws[0], draws[1]), to="integer")
            if noise
            else d.number(0),
        ]
        noised_names += [d.ident(f"_sqlanon_t_{slug}"), d.ident(f"_sqlanon_z_{slug}")]

    # outputs
    n_alias = "_sqlanon_n"
    ncol = lambda name: d.qualified((n_alias, name))  # noqa: E731
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
        units = d.prim("add", ncol("_sqlanon_t_units"), ncol("_sqlanon_z_units"))
        selected = d.prim("gt", units, d.number(r.selection.threshold))
    else:
        selected = d.prim("true_")
    return d.statement(
        "dp_release_query",
        d.relation(r.source),
        row_items,
        row_names,
        partial_items,
        partial_names,
        key_values,
        key_names,
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
        noised_items,
        noised_names,
        outputs,
        output_names,
        filters,
        selected,
    )


def _components(r: ReleasePlan) -> list[tuple[str, NoiseComponent, str]]:
    """(component id, noise, the per-group column holding its true value)."""
    out = [("units", r.units, "_sqlanon_units")]
    for i, m in enumerate(r.measures):
        for c in m.components:
            if m.agg == "count_units":
                continue  # released from the units component
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
    return d.prim("div", d.prim("add", as_float, _number(d, Fraction(1, 2))), d.number(TWO_52))


def _message(d: Dialect, fields: list[str | Sql]) -> Sql:
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


def release_statements(r: ReleasePlan, d: Dialect, epoch: Sql | None = None) -> list[Statement]:
    """Create the table if missing, replace this epoch's rows, and record the spend."""
    if epoch is None:
        epoch = d.prim(
            "require",
            d.prim("epoch_parameter"),
            d.string("sqlanon: set the epoch of this refresh (docs/dp.md)"),
            type="integer",
        )
    target = d.relation(r.target)
    cols = output_columns(r)
    names = [d.ident(n) for n, _ in cols]
    create = Statement(
        d.statement(
            "create_table_if_missing", target, names, column_types=tuple(t for _, t in cols)
        ).text
    )
    delete = Statement(
        d.statement("delete_where", target, d.prim("eq", d.ident("epoch"), epoch)).text
    )
    insert = Statement(d.statement("insert_query", target, names, release_query(r, d, epoch)).text)
    if d.features.get("transactions", True):
        begin, commit = Statement(d.statement("begin").text), Statement(d.statement("commit").text)
        out = [create, begin, delete, insert, ledger_insert(r, d, epoch), commit]
    else:
        # no transaction to make the three one: the spend is recorded first, so a refresh that
        # fails after it is counted (conservatively) rather than released uncounted
        out = [create, ledger_insert(r, d, epoch), delete, insert]
    return out + grant_statements(r.target, r.grants, d, "table")


def ledger_insert(r: ReleasePlan, d: Dialect, epoch: Sql) -> Statement:
    """The ledger row one refresh of `r` appends: what it spent."""
    return Statement(
        d.statement(
            "insert_values",
            d.relation(r.ledger),
            [d.ident(c) for c, _ in LEDGER_COLUMNS],
            [
                epoch,
                d.string(r.policy),
                d.string(r.name),
                _float(d, float(r.epsilon)),
                _float(d, float(r.delta)),
                d.prim("current_timestamp"),
            ],
        ).text
    )


LEDGER_COLUMNS = (
    ("epoch", "integer"),
    ("policy", "text"),
    ("release", "text"),
    ("epsilon", "float"),
    ("delta", "float"),
    ("refreshed_at", "timestamptz"),
)


def ledger_statements(table: tuple[str, ...], d: Dialect) -> list[Statement]:
    out = []
    if len(table) > 1:
        out.append(Statement(d.statement("create_schema", d.relation(table[:-1])).text))
    out.append(
        Statement(
            d.statement(
                "create_table_if_missing",
                d.relation(table),
                [d.ident(c) for c, _ in LEDGER_COLUMNS],
                column_types=tuple(t for _, t in LEDGER_COLUMNS),
            ).text
        )
    )
    return out
