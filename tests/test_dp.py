"""Differentially private releases, tested as claims: the noise has the discrete Laplace
distribution, an empirical privacy-loss estimate over many refreshes of neighbouring datasets
stays within the declared ε (counts, unit counts, sums, averages and the threshold's release
decision), contribution bounds hold against a unit with thousands of rows and against a unit
placed to exploit rounding to the grid, 95 % intervals cover 93–97 % of the time, and the noise
never comes from RANDOM(). Attacks across refreshes and edits: tests/test_dp_operations.py."""

from __future__ import annotations

import math
import re
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_unavailable
from scipy import stats

from sqlanon import testing as engines
from sqlanon.demo.retail import generate, load
from sqlanon.plan.build import build_plan
from sqlanon.plan.mechanism import DiscreteLaplace
from sqlanon.policy.load import load_policies, load_policy
from sqlanon.sql import dialect
from sqlanon.sql.releases import (
    ledger_statements,
    output_columns,
    release_query,
    release_statements,
)
from sqlanon.sql.shapes import Sql
from sqlanon.warehouse.apply import create_key_tables
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

REPO = Path(__file__).resolve().parent.parent
NOISE_KEY = b"noise key for the dp tests, 32 b"
GROUPS = 250
EPOCHS = 20  # refreshes of each dataset: GROUPS × EPOCHS independent trials
LIGHT = 60  # units per group with one row each
HEAVY_ROWS = 200  # the neighbouring unit: many rows, large values

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
    epsilon: 1.5
    delta: 1.0e-6
    group_by: {g: {transform: keep, type: integer}}
    bounds: {max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}
    measures:
      units: {agg: count_units}
      rows: {agg: count}
      total: {agg: sum, column: v, clamp: [0, 100]}
      mean: {agg: avg, column: v, clamp: [0, 100]}
budget: {epsilon: 2, delta: 1.0e-5}
"""


def release(tmp_path: Path, source: str, target: str, text: str = POLICY):  # type: ignore[no-untyped-def]
    path = tmp_path / f"{target}.yml"
    path.write_text(text.replace("SOURCE", source).replace("TARGET", target))
    return build_plan([load_policy(path)]).releases[0]


def duck_source(table: str, select: str) -> DuckDBEngine:
    """An in-memory DuckDB with raw.<table> made by a query."""
    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    engine.execute(f"CREATE TABLE raw.{table} AS {select}")
    return engine


def prepare(engine, d, plan_release) -> None:  # type: ignore[no-untyped-def]
    from sqlanon.plan.model import Plan

    create_key_tables(Plan((), (), (), releases=(plan_release,)), d, engine)
    store(engine, d, plan_release.key_table, "noise", 1, NOISE_KEY, replace=True)
    for s in ledger_statements(plan_release.ledger, d):
        engine.execute(s.text)
    engine.execute(d.statement("create_schema", d.relation(plan_release.target[:-1])).text)


def refresh(engine, d, r, epoch: int) -> None:  # type: ignore[no-untyped-def]
    for s in release_statements(r, d, epoch=d.number(epoch)):
        engine.execute(s.text)


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory):
    """Two datasets differing by one heavy unit in every group, each refreshed once per epoch
    for EPOCHS epochs: every (epoch, group) is an independent trial (its own nonce and group
    in the noise message)."""
    tmp = tmp_path_factory.mktemp("dp")
    d = dialect.get("duckdb")
    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    engine.execute(f"""CREATE TABLE raw.without_heavy AS
        SELECT g, g * 1000 + k AS u, 10.0 AS v
        FROM range({GROUPS}) AS a(g), range({LIGHT}) AS b(k)""")
    engine.execute(f"""CREATE TABLE raw.with_heavy AS
        SELECT * FROM raw.without_heavy
        UNION ALL SELECT g, g * 1000 + 999 AS u, 1000.0 AS v
        FROM range({GROUPS}) AS a(g), range({HEAVY_ROWS}) AS b(k)""")
    out = {}
    for name in ("with_heavy", "without_heavy"):
        r = release(tmp, name, name)
        prepare(engine, d, r)
        for epoch in range(1, EPOCHS + 1):
            refresh(engine, d, r, epoch=epoch)
        rows = engine.query(f"SELECT * FROM out.{name} ORDER BY epoch, g")
        cols = [c for c, _ in engine.columns(("out", name))]
        true = engine.query(
            d.statement(
                "select_ordered", release_query(r, d, d.number(1), noise=False), d.ident("g")
            ).text
        )
        out[name] = (
            r,
            [dict(zip(cols, row, strict=True)) for row in rows],
            [dict(zip(cols, row, strict=True)) for row in true],
        )
    yield out
    engine.close()


def noise_of(r, measure: str) -> DiscreteLaplace:  # type: ignore[no-untyped-def]
    m = next(m for m in r.measures if m.name == measure)
    c = m.components[0]
    return DiscreteLaplace(c.epsilon, c.sensitivity), c


@pytest.mark.parametrize("measure", ["units", "rows", "total"])
def test_noise_follows_the_discrete_laplace_distribution(neighbours, measure):
    samples = []
    for name in ("with_heavy", "without_heavy"):
        r, released, true = neighbours[name]
        truth = {t["g"]: t[measure] for t in true}
        noise, comp = noise_of(r, measure)
        for row in released:
            samples.append(round((row[measure] - truth[row["g"]]) / float(comp.granularity)))
    assert len(samples) >= 9_900  # all but the rare group under the threshold
    counts = Counter(samples)
    # bins with at least 5 expected, the tails merged
    edge = 0
    while noise.pmf(edge + 1) * len(samples) >= 5:
        edge += 1
    observed = [counts[z] for z in range(-edge, edge + 1)]
    expected = [noise.pmf(z) * len(samples) for z in range(-edge, edge + 1)]
    observed += [
        sum(v for z, v in counts.items() if z < -edge),
        sum(v for z, v in counts.items() if z > edge),
    ]
    tail = noise.tail(edge + 1) * len(samples)
    expected += [tail, tail]
    scale = sum(observed) / sum(expected)
    p = stats.chisquare(observed, [e * scale for e in expected]).pvalue
    assert p > 0.001, f"noise of {measure} does not look discrete Laplace (p = {p:.2g})"


@pytest.mark.parametrize("measure", ["units", "rows", "total"])
def test_confidence_intervals_cover_95_percent(neighbours, measure):
    hits = total = 0
    for name in ("with_heavy", "without_heavy"):
        _, released, true = neighbours[name]
        truth = {t["g"]: t[measure] for t in true}
        for row in released:
            total += 1
            hits += row[f"{measure}_ci_low"] <= truth[row["g"]] <= row[f"{measure}_ci_high"]
    assert total >= 2000
    assert 0.93 <= hits / total <= 0.97, hits / total


def test_average_intervals_cover_at_least_95_percent_and_centre_on_the_truth(neighbours):
    """An average's interval combines two 97.5 % intervals (sum and count): at least 95 %."""
    hits = total = 0
    errors = []
    for name in ("with_heavy", "without_heavy"):
        _, released, true = neighbours[name]
        truth = {t["g"]: t["mean"] for t in true}
        for row in released:
            total += 1
            hits += row["mean_ci_low"] <= truth[row["g"]] <= row["mean_ci_high"]
            errors.append(row["mean"] - truth[row["g"]])
    assert hits / total >= 0.95, hits / total
    # the median, not the mean: clamping the estimate to [0, 100] skews errors near 0 upwards
    errors.sort()
    assert abs(errors[len(errors) // 2]) < 0.5, "the estimate is centred on the truth"


def epsilon_lower_bound(xs: list[float], ys: list[float], thresholds: list[float]) -> float:
    """A 95 % lower confidence bound on the privacy loss shown by events {X ≥ c}, in both
    directions, with Clopper–Pearson intervals (Bonferroni over the events)."""
    alpha = 0.05 / (2 * len(thresholds))
    best = 0.0
    for c in thresholds:
        for a, b in ((xs, ys), (ys, xs)):
            k1, k2 = sum(x >= c for x in a), sum(y >= c for y in b)
            p1_low = stats.beta.ppf(alpha, k1, len(a) - k1 + 1) if k1 else 0.0
            p2_high = stats.beta.ppf(1 - alpha, k2 + 1, len(b) - k2) if k2 < len(b) else 1.0
            if p1_low > 0:
                best = max(best, math.log(p1_low / p2_high))
    return best


@pytest.mark.parametrize("measure", ["units", "rows", "total", "mean"])
def test_empirical_privacy_loss_stays_within_epsilon(neighbours, measure):
    r, with_heavy, _ = neighbours["with_heavy"]
    _, without, _ = neighbours["without_heavy"]
    xs = [row[measure] for row in with_heavy]
    ys = [row[measure] for row in without]
    declared = float(next(m for m in r.measures if m.name == measure).epsilon)
    qs = sorted(xs + ys)
    thresholds = sorted({qs[int(len(qs) * q)] for q in (0.1, 0.25, 0.5, 0.75, 0.9)})
    estimate = epsilon_lower_bound(xs, ys, thresholds)
    assert estimate <= declared, f"privacy loss {estimate:.3f} > ε {declared}"
    if measure != "mean":  # a ratio of two noisy values shows less than its ε at these events
        assert estimate > 0.25 * declared, "the test must be able to see the privacy loss at all"


def test_the_privacy_test_catches_too_little_noise():
    """The estimator flags a mechanism whose noise is calibrated for 4× the declared ε."""
    import random

    rng = random.Random(1)
    p = math.exp(-2.0)

    def geometric() -> int:
        return math.floor(math.log(1 - rng.random()) / math.log(p))

    xs = [21 + geometric() - geometric() for _ in range(5000)]
    ys = [20 + geometric() - geometric() for _ in range(5000)]
    assert epsilon_lower_bound(xs, ys, [19, 20, 21, 22, 23]) > 0.5


@pytest.mark.parametrize(
    "bounds",
    [
        "{max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}",
        "{max_groups_per_unit: 3, max_rows_per_unit_per_group: 2}",
        "{max_rows_per_unit: 3}",
        "{max_groups_per_unit: 4, max_rows_per_unit_per_group: 2, max_rows_per_unit: 5}",
    ],
)
def test_contribution_bounds_hold_against_a_unit_with_10000_rows(tmp_path, bounds):
    """One unit with 2,000 rows of a huge value in each of 5 groups changes the true
    (pre-noise) answer by what the bounds allow: never more, and as many rows as allowed."""
    from sqlanon.sql.releases import output_columns

    d = dialect.get("duckdb")
    engine = duck_source(
        "base", "SELECT g, g * 100 + k AS u, 5.0 AS v FROM range(5) AS a(g), range(10) AS b(k)"
    )
    engine.execute(
        "CREATE TABLE raw.plus AS SELECT * FROM raw.base UNION ALL "
        "SELECT range % 5 AS g, -1 AS u, 1.0e9 AS v FROM range(10000)"
    )
    text = re.sub(r"bounds: \{[^}]*\}", f"bounds: {bounds}", POLICY)
    true = {}
    for name in ("base", "plus"):
        r = release(tmp_path, name, name, text)
        prepare(engine, d, r)
        cols = [c for c, _ in output_columns(r)]
        query = release_query(r, d, d.number(1), noise=False)
        true[name] = {
            row[1]: dict(zip(cols, row, strict=True))
            for row in engine.query(d.statement("select_all", query).text)
        }
    groups, rows = r.sensitivities
    per_group = r.max_rows_per_unit_per_group
    diffs = {k: [true["plus"][g][k] - true["base"][g][k] for g in range(5)] for k in cols[2:]}
    assert all(0 <= x <= 1 for x in diffs["units"])
    assert 1 <= sum(diffs["units"]) <= groups, "the unit appears in at most groups_per_unit"
    assert all(0 <= x <= per_group for x in diffs["rows"])
    assert sum(diffs["rows"]) == rows, "the unit adds exactly rows_per_unit rows"
    assert all(0 <= x <= 100 * per_group for x in diffs["total"])
    assert sum(diffs["total"]) == pytest.approx(100 * rows), "each allowed row adds the clamp"
    engine.close()


def test_a_sum_grid_is_never_coarser_than_its_clamp(tmp_path):
    """Thousands of rows per unit made the grid formula give g = 1024 on a [0, 500] clamp:
    every row rounded to 0 steps, the sensitivity was 0 and planning crashed dividing by it
    (found by tests/test_fuzz.py on a mutated retail policy). The grid is now at most the
    largest power of two within the clamp, and the release runs."""
    wide = POLICY.replace(
        "bounds: {max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}",
        "bounds: {max_groups_per_unit: 6, max_rows_per_unit_per_group: 2098}",
    ).replace("clamp: [0, 100]", "clamp: [0, 500]")
    r = release(tmp_path, "wide", "wide", wide)
    total = next(m for m in r.measures if m.name == "total").components[0]
    mean = next(m for m in r.measures if m.name == "mean").components[0]
    assert (total.granularity, total.sensitivity) == (256, 6 * 2098 * 2)  # 500/256 → 2 steps
    assert (mean.granularity, mean.sensitivity) == (128, 6 * 2098 * 2)  # centred: ±250
    engine = duck_source("wide", "SELECT i % 7 AS u, i % 3 AS g, i * 1.5 AS v FROM range(50) t(i)")
    d = dialect.get("duckdb")
    prepare(engine, d, r)
    refresh(engine, d, r, 1)
    assert engine.query("SELECT COUNT(*) FROM out.wide")[0][0] >= 0


SEED_DATA = {
    "duckdb": "SELECT g, g * 100 + k AS u, k * 1.0 AS v FROM range(30) AS a(g), range(40) AS b(k)",
    "postgres": "SELECT g, g * 100 + k AS u, k * 1.0 AS v "
    "FROM generate_series(0, 29) AS a(g), generate_series(0, 39) AS b(k)",
}


@pytest.mark.parametrize("name", ["duckdb", "postgres"])
def test_stored_answers_are_reread_reruns_are_fresh_and_setseed_changes_nothing(
    name, live, tmp_path
):
    """Reading a release twice gives the stored answer; a refresh is drawn for the nonce the
    ledger issued it, whatever the engine's random seed; re-running the epoch is a new
    release with fresh noise, charged in the ledger."""
    d = dialect.get(name)
    engine = live.get(name)
    engine.execute("CREATE SCHEMA IF NOT EXISTS raw")
    engine.execute(f"CREATE TABLE raw.seeded AS {SEED_DATA[name]}")
    r = release(tmp_path, "seeded", "seeded", POLICY.replace("epsilon: 2,", "epsilon: 4,"))
    prepare(engine, d, r)

    def stored(epoch: int) -> list:  # type: ignore[type-arg]
        return engine.query(f"SELECT * FROM out.seeded WHERE epoch = {epoch} ORDER BY g")

    refresh(engine, d, r, 101)
    first = stored(101)
    assert len(first) > 20  # 40 units per group: a few fall under the threshold
    assert stored(101) == first
    (nonce,) = engine.query(
        "SELECT nonce FROM privacy.sqlanon_ledger WHERE epoch = 101 AND target = 'out.seeded'"
    )[0]
    for seed in (0.123, 0.9):
        engine.execute(f"SELECT setseed({seed})")
        again = release_query(r, d, d.number(101), nonce=d.string(nonce))
        assert sorted(engine.query(d.statement("select_query", again).text)) == sorted(first)
    refresh(engine, d, r, 101)
    assert [row[2] for row in stored(101)] != [row[2] for row in first], "a re-run, new noise"
    ledger = engine.query(
        "SELECT epoch, count(*) FROM privacy.sqlanon_ledger "
        "WHERE epoch = 101 AND target = 'out.seeded' GROUP BY epoch"
    )
    assert ledger == [(101, 2)]


def test_no_engine_randomness_in_any_dialect(tmp_path):
    r = release(tmp_path, "s", "s")
    for name in dialect.available():
        d = dialect.get(name)
        text = "\n".join(s.text for s in release_statements(r, d)).lower()
        assert not re.search(r"\b(random|rand|uuid|gen_random_uuid|newid)\s*\(", text), name


CROSS = """
sqlanon: 1
name: dpcross
keys: {table: dpx.keys}
tables: {}
releases:
  r:
    source: dpx.src
    target: dpx.out
    privacy_unit: u
    unit_type: integer
    epsilon: 6
    delta: 1.0e-6
    group_by:
      region: keep
      month: {column: day, transform: truncate_date, to: month}
    bounds: {max_groups_per_unit: 2, max_rows_per_unit_per_group: 3, max_rows_per_unit: 4}
    measures:
      people: {agg: count_units}
      orders: {agg: count}
      spend: {agg: sum, column: amount, clamp: [0, 250]}
      basket: {agg: avg, column: amount, clamp: [5, 250]}
  p:
    source: dpx.src
    target: dpx.pub
    privacy_unit: u
    unit_type: integer
    epsilon: 2
    group_by: {region: keep}
    groups: {public: [north, south, east, nowhere]}
    measures:
      people: {agg: count_units}
budget: {epsilon: 8, delta: 1.0e-5}
"""
REGIONS = ["north", "south", "east", "west"]


def release_numbers(engine, name: str, tmp_path: Path) -> dict[str, list]:  # type: ignore[no-untyped-def]
    import datetime as dt

    d = dialect.get(name)
    path = tmp_path / "cross.yml"
    path.write_text(CROSS)
    plan = build_plan([load_policy(path)])
    rows = [
        (
            u,
            REGIONS[(u * 7 + k) % 4],
            dt.date(2025, 1 + (u + k) % 3, 1 + k),
            float((u * 37 + k * 11) % 300),
        )
        for u in range(400)
        for k in range((u % 5) + 1)
    ]
    engine.execute(d.statement("create_schema", d.relation(("dpx",))).text)
    engine.execute(
        d.statement(
            "create_table",
            d.relation(("dpx", "src")),
            [d.ident(c) for c in ("u", "region", "day", "amount")],
            column_types=("integer", "text", "date", "float"),
        ).text
    )
    engine.load_rows(("dpx", "src"), rows)
    got = {}
    engine.set_epoch(3)  # as an operator runs the compiled file: the epoch is a session setting

    def rows(query: Sql) -> list[tuple]:  # type: ignore[type-arg]
        return sorted(tuple(_comparable(v) for v in row) for row in engine.query(query.text))

    for r in plan.releases:
        prepare(engine, d, r)
        for s in release_statements(r, d):
            engine.execute(s.text)
        stored = rows(d.statement("select_all", d.relation(r.target)))
        # the refresh drew its noise for the nonce its ledger row holds (the engine's clock
        # is part of it, so each engine's refresh differs) ...
        nonce = engine.query(
            f"SELECT nonce FROM {d.relation(r.ledger).text} "
            f"WHERE {d.ident('target').text} = '{r.target_name}'"
        )[0][0]
        again = release_query(r, d, d.number(3), nonce=d.string(nonce))
        assert rows(d.statement("select_query", again)) == stored
        # ... and for one nonce, every engine draws the same numbers
        fixed = release_query(r, d, d.number(3), nonce=d.string("17@2026-12-01T12:00:00Z"))
        got[r.name] = rows(d.statement("select_query", fixed))
    return got


_REFERENCE: dict[str, list] = {}


def duckdb_reference(tmp_path: Path) -> dict[str, list]:
    """The release on DuckDB, computed once per test process (whatever the worker)."""
    if not _REFERENCE:
        engine = DuckDBEngine()
        _REFERENCE.update(release_numbers(engine, "duckdb", tmp_path))
        engine.close()
    return _REFERENCE


def test_releases_have_the_expected_shape(tmp_path):
    got = duckdb_reference(tmp_path)
    assert len(got["p"]) == 4, "every public group, the empty one included"
    assert any(row[1] == "nowhere" for row in got["p"])
    assert len(got["r"]) >= 6


@pytest.mark.parametrize(
    "name", [e for e in ("postgres", "bigquery", "snowflake", "spark") if e in dialect.available()]
)
def test_every_engine_releases_the_same_numbers(name, live, tmp_path):
    reference = duckdb_reference(tmp_path)
    assert release_numbers(live.get(name), name, tmp_path) == reference, f"{name} differs"


def test_a_refresh_without_an_epoch_fails_with_a_message(tmp_path):
    from sqlanon.warehouse.apply import run_release

    d = dialect.get("duckdb")
    engine = duck_source("s", "SELECT 1 AS g, 1 AS u, 1.0 AS v")
    r = release(tmp_path, "s", "s")
    prepare(engine, d, r)
    with pytest.raises(Exception, match="set the epoch of this refresh"):
        run_release(r, d, engine)
    assert engine.query("SELECT count(*) FROM privacy.sqlanon_ledger") == [(0,)]
    engine.close()


def test_a_failed_refresh_leaves_the_epoch_and_the_ledger_as_they_were(tmp_path):
    from sqlanon.warehouse.apply import run_release

    d = dialect.get("duckdb")
    engine = duck_source(
        "s", "SELECT g, g * 100 + k AS u, 1.0 AS v FROM range(3) AS a(g), range(100) AS b(k)"
    )
    r = release(tmp_path, "s", "s")
    prepare(engine, d, r)
    engine.set_epoch(1)
    run_release(r, d, engine)
    before = engine.query("SELECT * FROM out.s ORDER BY g")
    assert len(before) == 3
    engine.execute("DELETE FROM privacy.sqlanon_keys")  # the INSERT fails: no noise key
    engine.set_epoch(2)
    with pytest.raises(Exception, match="key 'noise' version 1 is missing"):
        run_release(r, d, engine)
    assert engine.query("SELECT * FROM out.s ORDER BY g") == before
    assert engine.query("SELECT count(*) FROM privacy.sqlanon_ledger") == [(1,)]
    engine.close()


def _comparable(v):  # type: ignore[no-untyped-def]
    from sqlanon.review.conformance import canonical_value

    return canonical_value(v)


@pytest.mark.parametrize("name", ["duckdb", "postgres"])
def test_the_committed_release_files_run_as_an_operator_runs_them(name):
    """The committed files, whole: the ledger's setup file, then each release file after the
    session's epoch is set, exactly as docs/dp.md tells an operator to run them. A fresh
    engine: the retail tables' names are those of the cross-engine test."""
    with ExitStack() as stack:
        try:
            engine = stack.enter_context(engines.session(name))
        except engines.EngineUnavailable as exc:
            engine_unavailable(name, str(exc))
        check_committed_release_files(engine, name)


def check_committed_release_files(engine, name: str) -> None:  # type: ignore[no-untyped-def]
    d = dialect.get(name)
    build = REPO / "examples/retail/build" / name
    plan = build_plan(load_policies([str(REPO / "examples/retail/policy.yml")]))
    load(engine, generate(300, seed=11))
    create_key_tables(plan, d, engine)
    store(engine, d, plan.key_tables[0], "noise", 1, NOISE_KEY, replace=True)
    if name == "postgres":
        engine.execute(
            "DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    engine.execute((build / "setup/privacy.sqlanon_ledger.sql").read_text())
    engine.execute(d.statement("create_schema", d.relation(("analytics",))).text)
    before = engine.query("SELECT count(*) FROM privacy.sqlanon_ledger")[0][0]
    engine.set_epoch(41)
    for r in plan.releases:
        engine.execute((build / "releases" / f"{'.'.join(r.target)}.sql").read_text())
    rows = engine.query(
        "SELECT country, customers FROM analytics.customers_by_country "
        "WHERE epoch = 41 ORDER BY country"
    )
    assert [row[0] for row in rows] == ["CA", "GB", "MX", "US"]
    assert engine.query("SELECT count(*) FROM privacy.sqlanon_ledger WHERE epoch = 41")[0][0] == 2
    assert engine.query("SELECT count(*) FROM privacy.sqlanon_ledger")[0][0] == before + 2


# -- the threshold's release decision --------------------------------------------------------


@pytest.fixture(scope="module")
def at_the_threshold(tmp_path_factory):
    """Groups of exactly T units (T the release's threshold) and the same groups with one more
    unit each, refreshed for EPOCHS epochs: whether a group is released is the event whose
    probability one unit may change by at most e^ε (plus δ)."""
    tmp = tmp_path_factory.mktemp("threshold")
    d = dialect.get("duckdb")
    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    out = {}
    for name, extra in (("at_t", 0), ("at_t_plus_one", 1)):
        r = release(tmp, name, name)
        units = r.selection.threshold + extra
        select = (
            f"SELECT g, g * 1000 + k AS u, 1.0 AS v "
            f"FROM range({GROUPS}) AS a(g), range({units}) AS b(k)"
        )
        out[name] = (r, released_each_refresh(engine, d, r, name, select))
    yield out
    engine.close()


def released_each_refresh(engine, d, r, name: str, select: str) -> list[int]:  # type: ignore[no-untyped-def]
    """raw.<name> made by `select`, refreshed EPOCHS times: per (epoch, group), 1 if the group
    was released, else 0."""
    engine.execute(f"CREATE TABLE raw.{name} AS {select}")
    prepare(engine, d, r)
    for epoch in range(1, EPOCHS + 1):
        refresh(engine, d, r, epoch=epoch)
    released = {(e, g) for e, g in engine.query(f"SELECT epoch, g FROM out.{name}")}
    return [int((e, g) in released) for e in range(1, EPOCHS + 1) for g in range(GROUPS)]


def test_the_threshold_release_decision_stays_within_its_epsilon(at_the_threshold):
    r, fewer = at_the_threshold["at_t"]
    _, more = at_the_threshold["at_t_plus_one"]
    declared = float(r.measures[0].epsilon)  # the noisy unit count decides, at its share
    estimate = epsilon_lower_bound(more, fewer, [1])
    assert estimate <= declared, f"privacy loss {estimate:.3f} > ε {declared}"
    assert estimate > 0.25 * declared, "the test must see the loss (0.4 to 0.6 released)"


ROWS_ONLY = POLICY.replace(
    "bounds: {max_groups_per_unit: 1, max_rows_per_unit_per_group: 2}",
    "bounds: {max_rows_per_unit: 4}",
).replace("      units: {agg: count_units}\n", "")


def _appears(noise: DiscreteLaplace, t: int, rows: int) -> float:
    """P(rows + Z > t): the chance a group holding `rows` of one unit's rows is released."""
    return noise.tail(t - rows + 1) if t - rows + 1 >= 1 else 1 - noise.tail(rows - t)


def _worst(noise: DiscreteLaplace, t: int, total: int) -> float:
    """The largest total chance that the groups one unit alone creates appear, over every way
    of spreading its at most `total` rows over groups (integer partitions, exhaustively)."""

    def splits(n: int, most: int):  # type: ignore[no-untyped-def]
        if n == 0:
            yield []
        for first in range(min(n, most), 0, -1):
            for rest in splits(n - first, first):
                yield [first, *rest]

    return max(
        sum(_appears(noise, t, c) for c in split)
        for n in range(1, total + 1)
        for split in splits(n, n)
    )


@pytest.mark.parametrize("count_measure", [True, False])
def test_a_rows_only_release_selects_its_groups_by_their_bounded_rows(tmp_path, count_measure):
    """Bounded by T rows per unit alone, a release counts no units: its groups are selected
    by the noisy count of bounded rows (the count measure's own draw, or the selection's),
    whose threshold keeps every way one unit can create groups within δ (checked here over
    every split of its T rows, not with the closed form the planner uses)."""
    text = ROWS_ONLY if count_measure else ROWS_ONLY.replace("      rows: {agg: count}\n", "")
    r = release(tmp_path, "s", "s", text)
    sel = r.selection
    assert not r.counts_units
    if count_measure:
        (count,) = [m for m in r.measures if m.agg == "count"]
        assert (sel.reads, sel.noise, count.delta) == ("rows.rows", None, r.delta)
        assert all(m.epsilon == r.epsilon / len(r.measures) for m in r.measures)
        comp = count.components[0]
    else:
        assert sel.reads == "rows" and sel.noise is not None
        assert all(m.epsilon == r.epsilon / (len(r.measures) + 1) for m in r.measures)
        comp = sel.noise
    assert comp.sensitivity == 4  # as the unit count's would be: T groups at most
    noise = DiscreteLaplace(comp.epsilon, comp.sensitivity)
    t = sel.threshold
    assert t >= 4 and _worst(noise, t, 4) <= float(r.delta)
    assert t == 4 or _worst(noise, t - 1, 4) > float(r.delta), "the smallest such threshold"
    assert sel.delta_per_group == pytest.approx(_appears(noise, t, 4))


@pytest.fixture(scope="module")
def rows_at_the_threshold(tmp_path_factory):
    """A rows-only release: groups of exactly T one-row units (T its threshold), and the same
    groups with one more unit of the most rows it may add (4), refreshed EPOCHS times."""
    tmp = tmp_path_factory.mktemp("rows_threshold")
    d = dialect.get("duckdb")
    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    out = {}
    for name, extra in (("rows_at_t", 0), ("rows_at_t_plus_one", 4)):
        r = release(tmp, name, name, ROWS_ONLY)
        select = (
            f"SELECT g, g * 1000 + k AS u, 1.0 AS v "
            f"FROM range({GROUPS}) AS a(g), range({r.selection.threshold}) AS b(k) "
            f"UNION ALL SELECT g, g * 1000 + 999 AS u, 1.0 AS v "
            f"FROM range({GROUPS}) AS a(g), range({extra}) AS b(k)"
        )
        out[name] = (r, released_each_refresh(engine, d, r, name, select))
    yield out
    engine.close()


def test_the_rows_threshold_release_decision_stays_within_its_epsilon(rows_at_the_threshold):
    """One unit adds up to T = 4 rows to a group at the threshold: the decision to release
    it moves by at most the count's share of ε (its sensitivity is those 4 rows)."""
    r, fewer = rows_at_the_threshold["rows_at_t"]
    _, more = rows_at_the_threshold["rows_at_t_plus_one"]
    declared = float(r.measures[0].epsilon)
    estimate = epsilon_lower_bound(more, fewer, [1])
    assert estimate <= declared, f"privacy loss {estimate:.3f} > ε {declared}"
    assert estimate > 0.25 * declared, "the test must see the loss"


# -- sums on the grid: a unit placed to exploit rounding in every group it reaches ------------

GRID = """
sqlanon: 1
name: grid_TARGET
keys: {table: privacy.sqlanon_keys}
releases:
  r:
    source: raw.SOURCE
    target: out.TARGET
    privacy_unit: u
    unit_type: integer
    epsilon: 0.1
    delta: 1.0e-6
    group_by: {g: {transform: keep, type: integer}}
    bounds: {max_groups_per_unit: REACH, max_rows_per_unit_per_group: 1}
    measures:
      total: {agg: sum, column: v, clamp: CLAMP}
budget: {epsilon: 1, delta: 1.0e-5}
"""


@pytest.mark.parametrize("reach", [100, 1000])
@pytest.mark.parametrize("clamp", ["[0, 1000.3]", "[-1000.3, 1000.3]"])
def test_a_unit_in_many_groups_moves_the_grid_sums_by_at_most_their_sensitivity(
    tmp_path, reach, clamp
):
    """Each group's other rows sum to just below a rounding midpoint of the grid, and the
    neighbouring unit adds the clamp's top in every group it may reach: rounding adds a grid
    step in each of them. Before the fix the declared sensitivity allowed one such step in
    all (L1 shift 200 vs 103 declared at 100 groups); it must cover one per group."""
    d = dialect.get("duckdb")
    text = GRID.replace("REACH", str(reach)).replace("CLAMP", clamp)
    r = release(tmp_path, "base", "base", text)
    comp = r.measures[0].components[0]
    g = float(comp.granularity)
    below_midpoint = 0.5 * g - g / 64  # every filler's group sum sits just below 0.5 g
    top = float(r.measures[0].clamp[1])
    engine = duck_source(
        "base", f"SELECT g, g AS u, {below_midpoint!r} AS v FROM range({reach}) AS a(g)"
    )
    engine.execute(
        f"CREATE TABLE raw.plus AS SELECT * FROM raw.base "
        f"UNION ALL SELECT g, -1 AS u, {top!r} AS v FROM range({reach}) AS a(g)"
    )
    sums = {}
    for name in ("base", "plus"):
        r = release(tmp_path, name, name, text)
        prepare(engine, d, r)
        query = release_query(r, d, d.number(1), noise=False)
        sums[name] = {
            row[1]: row[2] for row in engine.query(d.statement("select_query", query).text)
        }
    shift = sum(abs(sums["plus"][k] - sums["base"][k]) for k in sums["base"]) / g
    declared = float(comp.sensitivity)
    assert shift <= declared, f"L1 shift {shift} grid steps > sensitivity {declared}"
    contribution = reach * top / g  # what the unit's values move without rounding
    assert shift > contribution + 1, "the construction gains a rounding step in every group"
    engine.close()


# -- hostile values in measure inputs and group keys --------------------------------------------

HOSTILE = """
sqlanon: 1
name: dphostile
keys: {table: dph.keys}
releases:
  h:
    source: dph.src
    target: dph.out
    privacy_unit: u
    unit_type: integer
    epsilon: 2
    delta: 1.0e-6
    group_by:
      band: {column: score, transform: bucket, edges: [0, 10, 100], output: label, type: float}
    measures:
      total: {agg: sum, column: amount, clamp: [0, 250]}
      parsed: {agg: avg, column: note, clamp: [0, 100], type: text}
budget: {epsilon: 2, delta: 1.0e-5}
"""
NAN, INF = float("nan"), float("inf")
SCORES = [5.0, 50.0, 500.0, NAN, INF, -INF, 1e300, -1e300, None, 5e-324, -0.0]
AMOUNTS = [10.0, None, NAN, INF, -INF, 1e300, 300.0, -5.0, 0.5, 99.5, 5e-324]
NOTES = ["12.5", "abc", "", " 7 ", "1e400", "-3", None, "+4.", ".5", "NaN", "1,000", "1e2",
         "0x10", "  42.0  ", "inf", "-0", "5e-3", "1e99", "12.", "1.2.3"]  # fmt: skip
# what docs/dp.md says each note means: a plain decimal number, or nothing
PARSED = {"12.5": 12.5, " 7 ": 7.0, "-3": -3.0, "+4.": 4.0, ".5": 0.5, "1e2": 100.0,
          "  42.0  ": 42.0, "-0": 0.0, "5e-3": 0.005, "1e99": 1e99, "12.": 12.0}  # fmt: skip


def hostile_rows() -> list[tuple]:  # type: ignore[type-arg]
    return [
        (u, SCORES[u % len(SCORES)], AMOUNTS[u % 7 + (u // 7) % 4], NOTES[u % len(NOTES)])
        for u in range(440)
    ]


def hostile_reference() -> dict[str | None, tuple[float, float, int]]:
    """Per band: the clamped sum of amounts (NULL and NaN skipped, infinities clamped) and
    the clamped sum and count of parsed notes."""
    out: dict[str | None, list] = {}  # type: ignore[type-arg]
    for _, score, amount, note in hostile_rows():
        if score is None or score != score:
            band = None
        else:
            band = "< 10" if score < 10 else "[10, 100)" if score < 100 else ">= 100"
        acc = out.setdefault(band, [0.0, 0.0, 0])
        if amount is not None and amount == amount:
            acc[0] += min(max(amount, 0.0), 250.0)
        if note in PARSED:
            acc[1] += min(max(PARSED[note], 0.0), 100.0)
            acc[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def hostile_release(engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The hostile release refreshed on `engine` (it must not fail), and its rows for one
    fixed nonce, and its true values."""
    d = dialect.get(engine.dialect)
    path = tmp_path / "hostile.yml"
    path.write_text(HOSTILE)
    (r,) = build_plan([load_policy(path)]).releases
    engine.execute(d.statement("create_schema", d.relation(("dph",))).text)
    engine.execute(
        d.statement(
            "create_table",
            d.relation(("dph", "src")),
            [d.ident(c) for c in ("u", "score", "amount", "note")],
            column_types=("integer", "float", "float", "text"),
        ).text
    )
    engine.load_rows(("dph", "src"), hostile_rows())
    prepare(engine, d, r)
    engine.set_epoch(1)
    for s in release_statements(r, d):
        engine.execute(s.text)
    true = engine.query(
        d.statement("select_query", release_query(r, d, d.number(1), noise=False)).text
    )
    return r, release_rows_for(engine, r), true


def release_rows_for(engine, r):  # type: ignore[no-untyped-def]
    from conftest import release_rows

    return release_rows(engine, r, epoch=1)


_HOSTILE: dict[str, Any] = {}


def test_hostile_values_are_skipped_clamped_or_grouped_as_documented(tmp_path):
    r, rows, true = hostile_release(DuckDBEngine(), tmp_path)
    _HOSTILE["duckdb"] = rows
    reference = hostile_reference()
    cols = [c for c, _ in output_columns(r)]
    got = {row[1]: dict(zip(cols, row, strict=True)) for row in true}
    assert set(got) == set(reference), "NaN and NULL scores form one NULL group, no error"
    g_total = float(r.measures[0].components[0].granularity)
    for band, (total, parsed_sum, parsed_n) in reference.items():
        assert abs(got[band]["total"] - total) <= g_total / 2, band
        if parsed_n:
            assert got[band]["parsed"] == pytest.approx(parsed_sum / parsed_n, abs=1.0), band


@pytest.mark.parametrize(
    "name", [e for e in ("postgres", "bigquery", "snowflake", "spark") if e in dialect.available()]
)
def test_hostile_values_release_the_same_on_every_engine(name, live, tmp_path):
    if "duckdb" not in _HOSTILE:
        (tmp_path / "duck").mkdir()
        _HOSTILE["duckdb"] = hostile_release(DuckDBEngine(), tmp_path / "duck")[1]
    _, rows, _ = hostile_release(live.get(name), tmp_path)
    assert rows == _HOSTILE["duckdb"], f"{name} differs"


DECIMAL_NAN = """
sqlanon: 1
name: dpnumeric
keys: {table: dpn.keys}
releases:
  n:
    source: dpn.src
    target: dpn.out
    privacy_unit: u
    unit_type: integer
    epsilon: 2
    delta: 1.0e-6
    group_by: {g: keep}
    groups: {public: [a]}
    measures:
      total: {agg: sum, column: amount, clamp: [0, 250], type: decimal}
      mean: {agg: avg, column: amount, clamp: [0, 250], type: decimal}
budget: {epsilon: 2, delta: 1.0e-5}
"""


def decimal_release(engine, d, tmp_path: Path, schema: str, amount_type: str = "decimal"):  # type: ignore[no-untyped-def]
    """DECIMAL_NAN's release reading <schema>.src (u, g, amount), created empty on `engine`
    (a PostgreSQL `decimal` is an unconstrained NUMERIC: it holds NaN and ±Infinity)."""
    path = tmp_path / f"{schema}.yml"
    path.write_text(DECIMAL_NAN.replace("dpn.", f"{schema}."))
    (r,) = build_plan([load_policy(path)]).releases
    engine.execute(d.statement("create_schema", d.relation((schema,))).text)
    create = d.statement(
        "create_table",
        d.relation((schema, "src")),
        [d.ident(c) for c in ("u", "g", "amount")],
        column_types=("integer", "text", amount_type),
    )
    engine.execute(create.text)
    return r


def test_a_postgresql_numeric_nan_is_skipped_like_null(live, tmp_path):
    """PostgreSQL's NUMERIC holds NaN (and ±Infinity), which it orders above every number: a
    decimal measure skips NaN like NULL (docs/dp.md#measure-inputs), not as the clamp's top,
    and clamps the infinities."""
    engine = live.get("postgres")
    d = dialect.get("postgres")
    r = decimal_release(engine, d, tmp_path, "dpn")
    values = ["10.50", "NaN", "Infinity", "-Infinity", "NULL", "300", "NaN", "0.25"]
    engine.execute(
        "INSERT INTO dpn.src VALUES "
        + ", ".join(
            f"({u}, 'a', {v if v == 'NULL' else repr(v) + '::numeric'})"
            for u, v in enumerate(values)
        )
    )
    prepare(engine, d, r)
    cols = [c for c, _ in output_columns(r)]
    (row,) = engine.query(
        d.statement("select_query", release_query(r, d, d.number(1), noise=False)).text
    )
    got = dict(zip(cols, row, strict=True))
    # 10.5 + 250 (Infinity) + 0 (-Infinity) + 250 (300) + 0.25 over five numbers
    assert float(got["total"]) == pytest.approx(510.75, abs=0.01)
    assert float(got["mean"]) == pytest.approx(510.75 / 5, abs=0.01)


def test_a_postgresql_refresh_sets_its_planner_settings_for_its_own_transaction(live, tmp_path):
    """A refresh turns JIT off and costs rows from parallel workers at nothing (docs/dialects.md)
    with SET LOCAL, inside its transaction: the session that ran it — an operator's psql, a
    scheduler's pooled connection — keeps its own settings afterwards, and so does a session
    whose refresh failed."""
    engine = live.get("postgres")
    d = dialect.get("postgres")
    r = decimal_release(engine, d, tmp_path, "dps")
    engine.execute("INSERT INTO dps.src VALUES (1, 'a', 2.5), (2, 'a', 7)")
    prepare(engine, d, r)
    texts = [s.text for s in release_statements(r, d)]
    begin, commit = texts.index("BEGIN"), texts.index("COMMIT")
    for setting in ("SET LOCAL jit = off", "SET LOCAL parallel_tuple_cost = 0"):
        assert begin < texts.index(setting) < commit
    settings = ("jit", "parallel_tuple_cost")
    engine.execute("SET parallel_tuple_cost = 0.25")  # the session's own choice
    try:
        before = [engine.query(f"SHOW {s}")[0][0] for s in settings]
        engine.set_epoch(1)
        for text in texts:
            engine.execute(text)
        assert [engine.query(f"SHOW {s}")[0][0] for s in settings] == before
        # a refresh that fails inside its transaction (no epoch) rolls its settings back too
        engine.execute("RESET sqlanon.epoch")
        with pytest.raises(Exception, match="set the epoch of this refresh"):
            for text in texts:
                engine.execute(text)
        engine.execute("ROLLBACK")
        assert [engine.query(f"SHOW {s}")[0][0] for s in settings] == before
    finally:
        engine.execute("ROLLBACK")
        engine.execute("RESET parallel_tuple_cost")  # the session is shared with later tests


EPOCH_TEXTS = ["''", "'2026-12-03'", "'abc'", "'99999999999999999999'", "'7.5'"]


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres", "snowflake"])
@pytest.mark.parametrize("i", range(len(EPOCH_TEXTS)))
def test_an_epoch_that_is_not_a_whole_number_stops_the_refresh_with_the_message(
    engine_name, i, live, tmp_path
):
    """An operator running the file by hand sets the epoch as text: empty (a RESET after an
    earlier refresh leaves PostgreSQL's setting '', not unset), a date, a word, a number
    beyond BIGINT, 7.5 (which DuckDB and Snowflake rounded to 8). Each stops the refresh with
    sqlanon's message, never a raw cast error nor a rounded epoch, and writes nothing to the
    ledger."""
    value = EPOCH_TEXTS[i]
    if engine_name == "duckdb":
        engine = duck_source("s", "SELECT 1 AS g, 1 AS u, 1.0 AS v")
        d = dialect.get("duckdb")
        r = release(tmp_path, "s", "s")
        set_value = f"SET VARIABLE sqlanon_epoch = {value}"
    else:
        engine = live.get(engine_name)
        d = dialect.get(engine_name)
        r = decimal_release(engine, d, tmp_path, f"dpe{i}", "float")
        setting = "sqlanon.epoch" if engine_name == "postgres" else "sqlanon_epoch"
        set_value = f"SET {setting} = {value}"
    prepare(engine, d, r)
    engine.execute(set_value)
    try:
        with pytest.raises(Exception, match="set the epoch of this refresh to a whole number"):
            for s in release_statements(r, d):
                engine.execute(s.text)
    finally:
        engine.execute("ROLLBACK")  # as an operator's client does after an error
        if engine_name != "duckdb":  # the session is shared with later tests
            engine.execute(
                "RESET sqlanon.epoch" if engine_name == "postgres" else "UNSET sqlanon_epoch"
            )
    ledger = d.relation(r.ledger).text
    assert engine.query(f"SELECT count(*) FROM {ledger}") == [(0,)]
