"""Contribution bounding, differentially: the release's true (noise-free) answers over random
data — units within every bound, heavy units that still fit, units over each bound, NULL and
NaN inputs, a NULL group — equal a plain-Python reference of docs/dp.md#what-the-query-does
that shares no code with the SQL. The SQL sums the rows of units within the smallest bound
directly and bounds only the others' partials (dialects/base: dp_release_query); this
reference bounds every unit's partials, as the documentation describes."""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from fractions import Fraction
from pathlib import Path

import pytest
from test_dp import NOISE_KEY, duck_source, prepare, release

from sqlanon.sql import dialect
from sqlanon.sql.releases import output_columns, release_query

POLICY = """
sqlanon: 1
name: dp_TARGET
keys: {table: privacy.sqlanon_keys}
releases:
  r:
    source: raw.SOURCE
    target: out.TARGET
    privacy_unit: u
    unit_type: integer
    epsilon: 3
    delta: 1.0e-6
    group_by: {g: keep}
    bounds: BOUNDS
    measures:
      people: {agg: count_units}
      rows: {agg: count}
      total: {agg: sum, column: v, clamp: [-3, 7.5]}
      mean: {agg: avg, column: v, clamp: [0.1, 0.7]}
budget: {epsilon: 3, delta: 1.0e-5}
"""
GROUPS = ["a", "b", "c", "d", None]


def reference(r, data):  # type: ignore[no-untyped-def]
    """{group: {output: value}} as documented: per unit and group the capped rows, sums of
    grid steps and capped counts; a unit over a bound keeps its groups in the order of
    HMAC(noise key, rank|unit|group) while the bounds allow; partial sums clamped to the
    allowed rows; outputs with no noise."""
    big_r, big_g, big_m = r.max_rows_per_unit_per_group, r.max_groups_per_unit, r.max_rows_per_unit
    measures = {m.name: m for m in r.measures}

    def steps(m, v):  # type: ignore[no-untyped-def]
        if v is None or math.isnan(v):
            return None
        lo, hi = float(m.clamp[0]), float(m.clamp[1])
        x = min(max(v, lo), hi)
        g = m.components[0].granularity
        q = math.floor(((x - float(m.center)) if m.center else x) / float(g) + 0.5)
        qlo = math.floor(Fraction(m.clamp[0] - m.center) / g + Fraction(1, 2))
        qhi = math.floor(Fraction(m.clamp[1] - m.center) / g + Fraction(1, 2))
        return min(max(q, qlo), qhi), qlo, qhi

    partials: dict = {}
    for u, g, v in data:
        p = partials.setdefault(u, {}).setdefault(g, {"rows": 0, "total": [0, 0], "mean": [0, 0]})
        p["rows"] += 1
        for name in ("total", "mean"):
            s = steps(measures[name], v)
            if s is not None:
                p[name][0] += s[0]
                p[name][1] += 1

    def field(text: str | None) -> str:
        return "-" if text is None else f"{len(text)}:{text}"

    out: dict = {}
    for u, groups in partials.items():
        capped = {g: min(p["rows"], big_r) for g, p in groups.items()}
        fits = len(groups) <= big_g and (big_m is None or sum(capped.values()) <= big_m)
        if fits:
            allowed = dict(capped)
        else:
            message = {g: f"rank|{field(str(u))}|{field(g)}" for g in groups}
            order = sorted(
                groups,
                key=lambda g: hmac.new(NOISE_KEY, message[g].encode(), hashlib.sha256).hexdigest(),
            )[:big_g]
            allowed, before = {}, 0
            for g in order:
                a = capped[g] if big_m is None else max(0, min(capped[g], big_m - before))
                allowed[g] = a
                before += capped[g]
        for g, a in allowed.items():
            if a <= 0:
                continue
            o = out.setdefault(g, {"people": 0, "rows": 0, "total": [0, 0], "mean": [0, 0]})
            o["people"] += 1
            o["rows"] += a
            for name in ("total", "mean"):
                m = measures[name]
                s, n = groups[g][name]
                n = min(n, big_r, a)
                _, qlo, qhi = steps(m, 0.0)  # type: ignore[misc]
                o[name][0] += min(max(s, n * qlo), n * qhi)
                o[name][1] += n
    result = {}
    for g, o in out.items():
        total, mean = measures["total"], measures["mean"]
        s, n = o["mean"]
        mid = float(mean.center)
        avg = float(s) * float(mean.components[0].granularity) / max(n, 1) + mid
        result[g] = {
            "people": o["people"],
            "rows": o["rows"],
            "total": float(o["total"][0]) * float(total.components[0].granularity),
            "mean": min(max(avg, float(mean.clamp[0])), float(mean.clamp[1])),
        }
    return result


def dataset(seed: int) -> list[tuple[int, str | None, float | None]]:
    """Units of 1 to 9 rows over up to 5 groups (one of them NULL), a few NULL and NaN
    inputs, values well outside both clamps."""
    rnd = random.Random(seed)
    rows = []
    for u in range(rnd.randint(5, 60)):
        reach = rnd.sample(GROUPS, rnd.randint(1, 3))
        for _ in range(rnd.choice([1, 1, 1, 2, 2, 3, 5, 9])):
            v = rnd.choice([None, float("nan"), rnd.uniform(-10, 12), rnd.uniform(0, 1)])
            rows.append((u, rnd.choice(reach), v))
    return rows


def literal(v: float | None) -> str:
    if v is None:
        return "NULL"
    return "CAST('nan' AS DOUBLE)" if math.isnan(v) else repr(v)


def true_answers(engine, d, r, template: str = "select_all") -> dict:  # type: ignore[no-untyped-def]
    """The release's noise-free outputs per group: {group: {output: value}}."""
    cols = [c for c, _ in output_columns(r)]
    query = release_query(r, d, d.number(1), noise=False)
    return {
        row[1]: dict(zip(cols, row, strict=True))
        for row in engine.query(d.statement(template, query).text)
    }


def assert_reference(got: dict, want: dict, label: object) -> int:
    """The engine's outputs equal the reference's in every group; how many groups."""
    assert set(got) == set(want), label
    for g, values in want.items():
        if "people" in got[g]:  # a rows-only release without count_units counts no units
            assert got[g]["people"] == values["people"], (label, g)
        assert got[g]["rows"] == values["rows"], (label, g)
        assert float(got[g]["total"]) == pytest.approx(values["total"], abs=1e-9), (label, g)
        assert float(got[g]["mean"]) == pytest.approx(values["mean"], rel=1e-12), (label, g)
    return len(want)


def dpbounds_source(engine, d, table: str, rows: list) -> None:  # type: ignore[no-untyped-def]
    """dpbounds.<table> (u integer, g text, v float) holding `rows`, on any engine."""
    engine.execute(d.statement("create_schema", d.relation(("dpbounds",))).text)
    engine.execute(
        d.statement(
            "create_table",
            d.relation(("dpbounds", table)),
            [d.ident(c) for c in ("u", "g", "v")],
            column_types=("integer", "text", "float"),
        ).text
    )
    engine.load_rows(("dpbounds", table), rows)


def dpbounds_policy(bounds: str, table: str, target: str) -> str:
    return (
        POLICY.replace("BOUNDS", bounds)
        .replace("raw.SOURCE", f"dpbounds.{table}")
        .replace("privacy.sqlanon_keys", "dpbounds.keys")
        .replace("out.TARGET", f"dpbounds.{target}")
    )


@pytest.mark.parametrize(
    "bounds",
    [
        "{max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}",
        "{max_groups_per_unit: 3, max_rows_per_unit_per_group: 2}",
        "{max_groups_per_unit: 2, max_rows_per_unit_per_group: 3, max_rows_per_unit: 4}",
        "{max_groups_per_unit: 4, max_rows_per_unit_per_group: 5, max_rows_per_unit: 3}",
        "{max_groups_per_unit: 5, max_rows_per_unit_per_group: 9}",
    ],
)
def test_bounded_totals_equal_the_documented_reference(tmp_path: Path, bounds: str) -> None:
    d = dialect.get("duckdb")
    text = POLICY.replace("BOUNDS", bounds)  # the mean's clamp: on the grid, or OFF_GRID
    heavy_seen = 0
    for seed in range(12):
        data = dataset(seed)
        engine = duck_source("src", "SELECT 0 AS u, 'x' AS g, 0.0::DOUBLE AS v LIMIT 0")
        engine.execute(
            "INSERT INTO raw.src VALUES "
            + ", ".join(
                f"({u}, {'NULL' if g is None else repr(g)}, {literal(v)})" for u, g, v in data
            )
        )
        seeded = text.replace("[0.1, 0.7]", OFF_GRID) if seed % 2 else text
        r = release(tmp_path, "src", f"b{seed}", seeded.replace("dp_TARGET", f"dp_b{seed}"))
        prepare(engine, d, r)
        got = true_answers(engine, d, r)
        engine.close()
        assert_reference(got, reference(r, data), seed)
        counts: dict = {}
        for u, _, _ in data:
            counts[u] = counts.get(u, 0) + 1
        smallest = min(
            x
            for x in (r.max_rows_per_unit_per_group, r.max_groups_per_unit, r.max_rows_per_unit)
            if x is not None
        )
        heavy_seen += sum(1 for c in counts.values() if c > smallest)
    assert heavy_seen > 20, "the data must hold units bounded by the partials' path"


@pytest.mark.parametrize("name", [n for n in dialect.available() if n != "duckdb"])
def test_every_engine_bounds_as_the_reference(name: str, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same differential on the other four engines, fewer seeds: each engine's release
    SQL differs (PostgreSQL finds heavy units by a window over the pairs, features.
    heavy_by_window), and each must bound units over R, G and T as documented."""
    d = dialect.get(name)
    engine = live.get(name)
    checked = 0
    for i, bounds in enumerate(
        [
            "{max_groups_per_unit: 2, max_rows_per_unit_per_group: 3, max_rows_per_unit: 4}",
            "{max_groups_per_unit: 4, max_rows_per_unit_per_group: 5, max_rows_per_unit: 3}",
        ]
    ):
        for seed in range(3):
            data = [
                (u, g, None if v is not None and math.isnan(v) else v)
                for u, g, v in dataset(100 + seed)
            ]  # NaN: the hostile-value tests
            table, target = f"bsrc{i}_{seed}", f"bout{i}_{seed}"
            dpbounds_source(engine, d, table, data)
            text = dpbounds_policy(bounds, table, target).replace("dp_TARGET", f"dp_{target}")
            r = release(tmp_path, table, target, text)
            prepare(engine, d, r)
            got = true_answers(engine, d, r, "select_query")
            checked += assert_reference(got, reference(r, data), (name, bounds, seed))
    assert checked > 20


@pytest.mark.parametrize("name", dialect.available())
def test_every_engine_bounds_a_rows_only_release_without_counting_units(
    name: str, live, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Bounded by the rows per unit alone and without count_units, a release counts no
    units: no (unit, group) pairs, the heavy units a HAVING over each unit's rows, and the
    groups selected by the count measure's bounded rows. Its outputs are the reference's on
    every engine, heavy units (over T = 3 rows, up to 9 of them in 3 groups) included."""
    d = dialect.get(name)
    engine = live.get(name)
    policy = POLICY.replace("      people: {agg: count_units}\n", "")
    checked = heavy = 0
    for seed in range(200, 203):
        data = [(u, g, None if v is not None and math.isnan(v) else v) for u, g, v in dataset(seed)]
        table, target = f"rsrc{seed}", f"rout{seed}"
        dpbounds_source(engine, d, table, data)
        text = (
            policy.replace("BOUNDS", "{max_rows_per_unit: 3}")
            .replace("raw.SOURCE", f"dpbounds.{table}")
            .replace("privacy.sqlanon_keys", "dpbounds.keys")
            .replace("out.TARGET", f"dpbounds.{target}")
            .replace("dp_TARGET", f"dp_{target}")
        )
        r = release(tmp_path, table, target, text)
        assert r.selection.reads == "rows.rows" and not r.counts_units
        sql = release_query(r, d, d.number(1)).text
        assert "_sqlanon_pairs" not in sql and "_sqlanon_t_units" not in sql
        prepare(engine, d, r)
        got = true_answers(engine, d, r, "select_query")
        checked += assert_reference(got, reference(r, data), (name, seed))
        units = [u for u, _, _ in data]
        heavy += sum(1 for u in set(units) if units.count(u) > 3)
    assert checked > 8 and heavy > 5


@pytest.mark.parametrize("name", dialect.available())
def test_every_engine_bounds_a_release_without_groups(name: str, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No group_by: each unit is its own one pair, and the heavy units are those over T or R
    (PostgreSQL's pairs are then counted per heavy unit and for the rest, one row). The one
    output row equals the reference on every engine, with rows and without."""
    d = dialect.get(name)
    engine = live.get(name)
    bounds = "{max_groups_per_unit: 1, max_rows_per_unit_per_group: 3, max_rows_per_unit: 2}"
    for seed in (300, 301, None):  # None: a source with no rows
        data = [] if seed is None else [(u, "x", v) for u, _, v in dataset(seed)]
        data = [(u, g, None if v is not None and math.isnan(v) else v) for u, g, v in data]
        table, target = f"nsrc{seed}", f"nout{seed}"
        dpbounds_source(engine, d, table, data)
        text = dpbounds_policy(bounds, table, target).replace("dp_TARGET", f"dp_{target}")
        r = release(tmp_path, table, target, text.replace("group_by: {g: keep}", "group_by: {}"))
        prepare(engine, d, r)
        cols = [c for c, _ in output_columns(r)]
        query = release_query(r, d, d.number(1), noise=False)
        (row,) = engine.query(d.statement("select_query", query).text)
        got = dict(zip(cols, row, strict=True))
        want = reference(r, data).get("x", {"people": 0, "rows": 0, "total": 0.0})
        label = (name, seed)
        assert (got["people"], got["rows"]) == (want["people"], want["rows"]), label
        assert float(got["total"]) == pytest.approx(want["total"], abs=1e-9), label
        if seed is not None:
            assert want["people"] > 20 and float(got["mean"]) == pytest.approx(want["mean"])


# 0.3 and the center (0.3 + 1.27802734375)/2 have no exact doubles: on the engines the lower
# end is -1002 steps of 1/2048 (the grid at one group of two rows), not the -1001 the
# sensitivity counts (found by a search over clamps whose width is an odd number of steps)
OFF_GRID = "[0.3, 1.27802734375]"


def test_a_clamp_end_rounding_off_the_grid_is_kept_on_it(tmp_path: Path) -> None:
    """Every row's steps lie within the clamp's ends on the grid — what the sensitivity
    counts — also where the engines' doubles round an end one step out: the SQL then clamps
    the steps too, and a unit of rows at that end releases exactly the end."""
    from sqlanon.plan.mechanism import float_steps, on_grid

    d = dialect.get("duckdb")
    text = POLICY.replace("BOUNDS", "{max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}")
    r = release(tmp_path, "src", "off", text.replace("[0.1, 0.7]", OFF_GRID))
    m = next(m for m in r.measures if m.name == "mean")
    g = m.components[0].granularity
    qlo = on_grid(Fraction(m.clamp[0] - m.center), g)
    assert float_steps(float(m.clamp[0]), float(m.center), g) == qlo - 1, "the case it tests"
    engine = duck_source("src", "SELECT 7 AS u, 'a' AS g, -5.0::DOUBLE AS v")
    prepare(engine, d, r)
    ((_, row),) = true_answers(engine, d, r).items()
    engine.close()
    assert row["mean"] == pytest.approx(float(m.center) + float(qlo * g), abs=1e-15)
    assert reference(r, [(7, "a", -5.0)])["a"]["mean"] == pytest.approx(row["mean"], abs=1e-15)


@pytest.mark.parametrize("name", dialect.available())
def test_every_engine_keeps_an_off_grid_clamp_end_on_the_grid(
    name: str, live, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The same edge on every engine: the clamp's two ends, each the one row of a unit
    within every bound, release exactly the ends on the grid (the engines compute the steps
    in doubles as float_steps does, and clamp them where the plan found they must)."""
    from sqlanon.plan.mechanism import on_grid
    from sqlanon.warehouse.duckdb import DuckDBEngine

    d = dialect.get(name)
    bounds = "{max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}"
    text = dpbounds_policy(bounds, "src", "out").replace("[0.1, 0.7]", OFF_GRID)
    r = release(tmp_path, "src", "edge", text)
    engine = DuckDBEngine() if name == "duckdb" else live.get(name)
    dpbounds_source(engine, d, "src", [(7, "low", -5.0), (8, "high", 99.0)])
    prepare(engine, d, r)
    got = {g: float(row["mean"]) for g, row in true_answers(engine, d, r, "select_query").items()}
    if name == "duckdb":
        engine.close()
    m = next(m for m in r.measures if m.name == "mean")
    g = m.components[0].granularity
    ends = [on_grid(Fraction(c - m.center), g) for c in m.clamp]
    lo, hi = float(m.clamp[0]), float(m.clamp[1])  # an average is reported within the clamp
    assert got == {
        "low": min(max(float(m.center) + float(ends[0] * g), lo), hi),  # 0.3002…, not 0.3
        "high": min(max(float(m.center) + float(ends[1] * g), lo), hi),
    }


def test_a_release_without_groups_over_no_rows_counts_zero_not_null(tmp_path: Path) -> None:
    """A release with no group_by over a source with no rows had NULL as its true rows and
    sums (an empty SUM), so whenever its one row passed the threshold it released NULL
    (NULL + noise is NULL) where a single row would have released numbers: whether anyone is
    in the data, told with certainty. Its true values are zeros now, noised like any group."""
    d = dialect.get("duckdb")
    text = POLICY.replace("BOUNDS", "{max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}")
    r = release(tmp_path, "src", "none", text.replace("group_by: {g: keep}", "group_by: {}"))
    cols = [c for c, _ in output_columns(r)]
    engine = duck_source("src", "SELECT 7 AS u, 'a' AS g, 0.5::DOUBLE AS v LIMIT 0")
    prepare(engine, d, r)
    query = release_query(r, d, d.number(1), noise=False)
    (row,) = engine.query(d.statement("select_all", query).text)
    engine.close()
    got = dict(zip(cols, row, strict=True))
    assert None not in row, got
    assert (got["people"], got["rows"], got["total"]) == (0, 0, 0)
