"""Synthetic tables (docs/synthetic.md): drawn in SQL, the same rows on every engine for one
nonce, fresh rows for every refresh, charged to the budget, and a privacy unit's rows bounded."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from conftest import FIXED_NONCE

from sqlanon.plan.build import build_plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policy
from sqlanon.review.conformance import canonical_value
from sqlanon.sql import dialect
from sqlanon.sql.synthetic import (
    marginals_query,
    setup_statements,
    synthetic_query,
    tree_query,
    weights_query,
)
from sqlanon.warehouse import ENGINES
from sqlanon.warehouse.apply import RefreshRefused, create_key_tables, refresh
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "examples/adult/synthetic.yml"  # its domains and pairs
D = dialect.get("duckdb")
TARGETS = [e for e in ENGINES if e in dialect.available()]
COLUMNS = (
    "sex",
    "age",
    "race",
    "marital-status",
    "education",
    "native-country",
    "workclass",
    "occupation",
    "salary-class",
)


def adult(n: int) -> list[tuple[object, ...]]:
    with (REPO / "examples/adult/adult.csv").open(newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        assert tuple(next(reader)) == COLUMNS
        rows = [
            tuple(int(v) if c == "age" else v for v, c in zip(r, COLUMNS, strict=True))
            for r in reader
        ]
    return rows[:n]


def consistent(noisy: list[tuple[int, ...]]) -> dict[tuple[int, int, int], int]:
    """docs/synthetic.md#consistency in plain Python: each marginal's noisy counts (rows of
    marginal, i, j, count) lowered by the least whole shift d >= 0 whose clipped sum is at
    most the marginal's noisy total, negatives as 0 (all 0 when the total is not positive),
    found by bisection from the definition rather than by the SQL's formula."""
    cells: dict[int, list[tuple[tuple[int, int, int], int]]] = {}
    for m, i, j, c in noisy:
        cells.setdefault(int(m), []).append(((int(m), int(i), int(j)), int(c)))
    out = {}
    for rows in cells.values():
        counts = [c for _, c in rows]
        total = sum(counts)
        lo, hi = 0, max(max(counts), 0)
        while lo < hi:  # the least d with sum(max(c - d, 0)) <= total
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if sum(max(c - mid, 0) for c in counts) <= total else (mid + 1, hi)
        for cell, c in rows:
            out[cell] = max(c - lo, 0) if total > 0 else 0
    return out


def policy_text(rows: str = "noisy", epsilon: str = "1", budget: str = "1") -> str:
    text = POLICY.read_text()
    text = text.replace("    rows: noisy\n", f"    rows: {rows}\n", 1)
    text = text.replace("    epsilon: 1\n", f"    epsilon: {epsilon}\n", 1)
    return text.replace("budget: {epsilon: 1}", f"budget: {{epsilon: {budget}}}", 1)


def auto_text(text: str) -> str:
    """The policy with `structure: auto` for its declared pairs."""
    return text[: text.index("    structure:\n")] + "    structure: auto\n"


def install(engine, rows: list[tuple[object, ...]], text: str):  # type: ignore[no-untyped-def]
    d = dialect.get(engine.dialect)
    for schema in ("raw", "synth", "privacy"):
        engine.execute(f"DROP SCHEMA IF EXISTS {d.ident(schema).text} CASCADE")
    engine.execute(d.statement("create_schema", d.relation(("raw",))).text)
    types = tuple("integer" if c == "age" else "text" for c in COLUMNS)
    engine.execute(
        d.statement(
            "create_table",
            d.relation(("raw", "adult")),
            [d.ident(c) for c in COLUMNS],
            column_types=types,
        ).text
    )
    if rows:
        engine.load_rows(("raw", "adult"), rows)
    plan = build_plan([load_policy(POLICY, text=text)])
    create_key_tables(plan, d, engine)
    (key_table,) = plan.key_tables
    store(engine, d, key_table, "noise", 1, b"test key noise, 32 bytes long....", replace=True)
    return plan


def drawn(engine, plan, nonce: str = FIXED_NONCE) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    d = dialect.get(engine.dialect)
    (s,) = plan.synthetic
    if d.features.refresh_planner_settings:  # as a refresh runs it (SET LOCAL jit = off)
        engine.execute("SET jit = off")
    for statement in setup_statements(s, d):
        engine.execute(statement.text)
    query = synthetic_query(s, d, d.number(1), nonce=d.string(nonce))
    rows = engine.query(d.statement("select_query", query).text)
    return sorted((tuple(canonical_value(v) for v in r) for r in rows), key=repr)


# a person's rows bounded by a keyed rank: workclass stands for the unit (7 units), at most 3
# rows each are used, chosen by the keyed hash of the unit and the row's values
UNIT_TEXT = ("    rows_are_units: true  # the extract has one row per person\n",
             "    privacy_unit: workclass\n    max_rows_per_unit: 3\n")  # fmt: skip


@pytest.fixture(scope="module")
def every_engine(live):  # type: ignore[no-untyped-def]
    rows = adult(300)
    out = {}
    for name in TARGETS:
        engine = live.get(name)
        plan = install(engine, rows, policy_text(rows="noisy"))
        out[name] = drawn(engine, plan)
        (s,) = plan.synthetic
        d = dialect.get(name)
        for part, make in (("noisy", marginals_query), ("weights", weights_query)):
            sql = make(s, d, d.number(1), d.string(FIXED_NONCE))
            cells = engine.query(d.statement("select_query", sql).text)
            out[f"{name} {part}"] = sorted(tuple(int(v) for v in r) for r in cells)
        bounded = install(engine, rows, policy_text(rows="40").replace(*UNIT_TEXT))
        d = dialect.get(name)
        (s,) = bounded.synthetic
        true = marginals_query(s, d, d.number(1), nonce=d.string(FIXED_NONCE), noise=False)
        counts = engine.query(d.statement("select_query", true).text)
        out[name + " bounded"] = sorted(tuple(int(v) for v in r) for r in counts)
        chosen = install(engine, rows, auto_text(policy_text(rows="40")))
        out[name + " auto"] = drawn(engine, chosen)
        (s,) = chosen.synthetic
        tree = tree_query(s, d, d.number(1), d.string(FIXED_NONCE))
        out[name + " tree"] = [
            tuple(int(v) for v in r) for r in engine.query(d.statement("select_query", tree).text)
        ]
    return out


def test_every_engine_draws_the_same_rows(every_engine) -> None:  # type: ignore[no-untyped-def]
    reference = every_engine["duckdb"]
    assert 200 < len(reference) < 400  # the noisy count of 300 rows at ε = 1/8 per marginal
    for name in TARGETS:
        assert every_engine[name] == reference, f"{name} drew other rows than DuckDB"
        got, want = every_engine[name + " weights"], every_engine["duckdb weights"]
        assert got == want, f"{name} made the marginals consistent otherwise than DuckDB"
        got, want = every_engine[name + " bounded"], every_engine["duckdb bounded"]
        assert got == want, f"{name} bounded the units' rows otherwise than DuckDB"
        got, want = every_engine[name + " tree"], every_engine["duckdb tree"]
        assert got == want, f"{name} chose another tree than DuckDB (structure: auto)"
        got, want = every_engine[name + " auto"], every_engine["duckdb auto"]
        assert got == want, f"{name} drew other rows than DuckDB (structure: auto)"
    assert len(every_engine["duckdb auto"]) == 40
    # the bound: at most 3 rows of each of the 7 units in every marginal
    for m in {r[0] for r in every_engine["duckdb bounded"]}:
        assert sum(r[3] for r in every_engine["duckdb bounded"] if r[0] == m) <= 21


def test_the_consistency_step_is_the_documented_shift(every_engine) -> None:  # type: ignore[no-untyped-def]
    """Every engine's weights are the Python reference's, over 300 rows at ε = 1/8 per
    marginal: sparse marginals, many negative counts, cells shifted to 0."""
    noisy = every_engine["duckdb noisy"]
    want = consistent(noisy)
    got = {(m, i, j): w for m, i, j, w in every_engine["duckdb weights"]}
    assert got == want
    shifted = sum(1 for m, i, j, c in noisy if c > 0 and got[(m, i, j)] < c)
    assert sum(c < 0 for *_, c in noisy) > 20 and shifted > 20  # the step did something
    for m in {r[0] for r in noisy}:  # each marginal's weights sum to at most its noisy total
        total = sum(c for mm, *_, c in noisy if mm == m)
        assert sum(w for (mm, _, _), w in got.items() if mm == m) <= max(total, 0)


def test_rows_hold_domain_values_of_the_released_types(every_engine) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan([load_policy(POLICY, text=policy_text())])
    (s,) = plan.synthetic
    for row in every_engine["duckdb"]:
        assert row[0] == "1"  # the epoch
        for value, attribute in zip(row[1:], s.attributes, strict=True):
            assert value in attribute.domain


@pytest.fixture
def duck_adult():  # type: ignore[no-untyped-def]
    engine = DuckDBEngine()
    yield engine
    engine.close()


def test_each_nonce_draws_fresh_rows_and_a_fixed_count(duck_adult) -> None:  # type: ignore[no-untyped-def]
    plan = install(duck_adult, adult(2000), policy_text(rows="500"))
    first, again, other = (drawn(duck_adult, plan, n) for n in ("1@a", "1@a", "2@b"))
    assert len(first) == len(other) == 500
    assert first == again  # one nonce, one table
    assert first != other  # a new refresh is new noise and new draws


def test_the_pairs_keep_their_joint_distribution(duck_adult) -> None:  # type: ignore[no-untyped-def]
    """At a large ε the synthetic rows' salary-class × marital-status shares are the source's
    (a pair the structure declares), within sampling error."""
    source = adult(5000)
    plan = install(duck_adult, source, policy_text(rows="20000", epsilon="100", budget="100"))
    rows = drawn(duck_adult, plan)
    names = ("epoch", "age", *COLUMNS[:1], *COLUMNS[2:])
    got = Counter((r[names.index("salary-class")], r[names.index("marital-status")]) for r in rows)
    want = Counter((r[8], r[3]) for r in source)
    for cell, count in want.items():
        assert abs(got[cell] / len(rows) - count / len(source)) < 0.015, cell


def test_a_refresh_is_charged_and_refused_over_the_budget(duck_adult) -> None:  # type: ignore[no-untyped-def]
    plan = install(duck_adult, adult(500), policy_text(rows="100", epsilon="0.6", budget="1"))
    (report,) = refresh(plan, dialect.get("duckdb"), duck_adult, epoch=3)
    assert report.kind == "synthetic" and report.groups == 100 and report.epsilon == 0.6
    stored = duck_adult.query("SELECT COUNT(*), MIN(epoch) FROM synth.adult")
    assert stored == [(100, 3)]
    with pytest.raises(RefreshRefused, match="over its budget"):
        refresh(plan, dialect.get("duckdb"), duck_adult, epoch=3)
    assert duck_adult.query("SELECT COUNT(*) FROM synth.adult") == [(100,)]  # left as it was


def test_a_unit_adds_at_most_its_bounded_rows(duck_adult) -> None:  # type: ignore[no-untyped-def]
    """With a privacy unit and max_rows_per_unit 1, a person with 1,000 rows weighs like one:
    the marginals (at a large ε, noise negligible) count one of them."""
    text = policy_text(rows="noisy", epsilon="100", budget="100").replace(
        "    rows_are_units: true  # the extract has one row per person\n",
        "    privacy_unit: sex\n    unit_type: text\n",
    )
    plan = install(duck_adult, adult(400), text)
    rows = drawn(duck_adult, plan)
    # two units (Female, Male) of one row each: the noisy count is about 2
    assert len(rows) < 40


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                "      - [salary-class, occupation]\n",
                "      - [salary-class, occupation]\n      - [age, sex]\n",
            ),
            "closes a cycle",
        ),
        (("      sex: [Female, Male]\n", ""), "has no public domain"),
        (
            ("    rows_are_units: true  # the extract has one row per person\n", ""),
            "needs either `privacy_unit",
        ),
        (("      sex: [Female, Male]\n", "      sex: [Female, Male, Male]\n"), "listed twice"),
        (("      - [salary-class, sex]\n", "      - [salary-class, sexx]\n"), "did you mean"),
        (("budget: {epsilon: 1}", "budget: {epsilon: 0.5}"), "more than the budget"),
    ],
)
def test_policy_errors_are_located(edit: tuple[str, str], message: str) -> None:
    text = policy_text()
    assert edit[0] in text
    with pytest.raises(PolicyError) as err:
        load_policy(POLICY, text=text.replace(edit[0], edit[1], 1))
    text = "\n".join(
        f"{x.loc.file}:{x.loc.line}: {x.message} {x.hint or ''}" for x in err.value.diagnostics
    )
    assert message in text
    assert "synthetic.yml:" in text


DERIVED_POLICY = """
sqlanon: 1
name: derived
keys: {table: privacy.keys}
budget: {epsilon: 50}
synthetic:
  s:
    source: raw.people
    target: out.people
    rows_are_units: true
    epsilon: 50
    rows: 4000
    attributes:
      born: {transform: age, as_of: 2026-01-01, width: 20, min: 0, max: 60}
      job: {transform: generalize, hierarchy: examples/adult/hierarchies/occupation.csv, level: 1}
      sex: {transform: generalize, hierarchy: {F: [Female], M: [Male]}, level: 0}
    structure: [[born, job]]
"""


def test_age_and_generalize_fix_their_own_domains(duck_adult) -> None:  # type: ignore[no-untyped-def]
    """No `domains:` needed: age's buckets and a hierarchy's level (with its `unknown`, what a
    value missing from it becomes) are the public domains; at level 0 the hierarchy's own
    values, a value outside them not used."""
    (s,) = build_plan([load_policy(REPO / "n.yml", text=DERIVED_POLICY)]).synthetic
    assert [a.domain for a in s.attributes] == [
        ("0", "20", "40", "60"),
        ("Technical", "Other", "Nontechnical", "*"),
        ("F", "M"),
    ]
    fine = DERIVED_POLICY.replace("width: 20, min: 0, max: 60", "width: 1, min: 0, max: 1000")
    with pytest.raises(PolicyError) as err:  # a derived domain is bounded like a listed one
        load_policy(REPO / "n.yml", text=fine)
    (problem,) = err.value.diagnostics
    assert "'born'" in problem.message and "has 1001 values" in problem.message
    assert problem.loc.line == 14  # the attribute's line
    duck_adult.execute("CREATE SCHEMA raw")
    duck_adult.execute("CREATE TABLE raw.people (born DATE, job VARCHAR, sex VARCHAR)")
    people = (
        [("1990-06-01", "Sales", "F")] * 300  # 35: bucket 20, Nontechnical
        + [("1950-01-01", "Astronaut", "M")] * 300  # 76: bucket 60 (max), job unknown
        + [("2010-01-01", "Tech-support", "X")] * 300  # sex outside its domain: not used
    )
    duck_adult.load_rows(("raw", "people"), people)
    s = keyed_table(duck_adult, DERIVED_POLICY)
    query = synthetic_query(s, D, D.number(1), nonce=D.string(FIXED_NONCE))
    rows = Counter(tuple(r[1:]) for r in duck_adult.query(D.statement("select_query", query).text))
    assert sum(rows.values()) == 4000
    # the pair kept; sex, in no pair, drawn alone; the rows whose sex is outside its domain
    # not used (no one of age 16, bucket 0, is drawn)
    assert {r[:2] for r in rows} == {(20, "Nontechnical"), (60, "*")}, rows
    assert {r[2] for r in rows} == {"F", "M"}


# -- the noise of the marginals, tested as a claim ------------------------------------------

NEIGHBOUR_POLICY = """
sqlanon: 1
name: neighbours
keys: {table: privacy.keys}
budget: {epsilon: 2}
synthetic:
  s:
    source: raw.SOURCE
    target: out.SOURCE
    privacy_unit: u
    unit_type: integer
    epsilon: 2
    rows: 10
    attributes:
      a: {transform: bucket, width: 1, min: 0, max: 9}
      b: {transform: bucket, width: 1, min: 0, max: 9}
      c: {transform: bucket, width: 1, min: 0, max: 1}
    structure: [[a, b]]
"""
NONCES = 40


def keyed_table(engine, text: str):  # type: ignore[no-untyped-def]
    """The policy's one synthetic table, its key table made and its noise key stored."""
    d = dialect.get(engine.dialect)
    plan = build_plan([load_policy(REPO / "n.yml", text=text)])
    (s,) = plan.synthetic
    create_key_tables(plan, d, engine)
    store(engine, d, s.key_table, "noise", 1, b"test key noise, 32 bytes long....", replace=True)
    return s


def noisy_cells(engine, name: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The noisy counts of the pair a × b, cell by cell, for NONCES refreshes."""
    d = dialect.get("duckdb")
    s = keyed_table(engine, NEIGHBOUR_POLICY.replace("SOURCE", name))
    out: list[int] = []
    for n in range(NONCES):
        query = marginals_query(s, d, d.number(1), nonce=d.string(f"{n}@t"))
        rows = engine.query(d.statement("select_query", query).text)
        out += [int(r[3]) for r in sorted(rows) if r[0] == 0]  # marginal 0: a × b
    return out


def test_the_marginals_noise_stays_within_its_epsilon_share() -> None:
    """Two sources, one with an extra unit in every cell of a × b — each cell an independent
    trial of the one-unit neighbour (its own noise message) — whose noisy counts over many
    refreshes show a privacy loss (Clopper–Pearson lower bound) within the share of ε the
    marginal has (ε / 2 here: a × b and c alone), and not far below it."""
    from test_dp import epsilon_lower_bound

    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    base = (
        "SELECT a * 1000 + b * 10 + k AS u, a, b, k % 2 AS c "
        "FROM range(10) x(a), range(10) y(b), range(5) z(k)"
    )
    engine.execute(f"CREATE TABLE raw.without_one AS {base}")
    engine.execute(
        f"CREATE TABLE raw.with_one AS {base} UNION ALL "
        "SELECT 900000 + a * 10 + b AS u, a, b, 0 AS c FROM range(10) x(a), range(10) y(b)"
    )
    xs, ys = noisy_cells(engine, "with_one"), noisy_cells(engine, "without_one")
    assert len(xs) == len(ys) == 100 * NONCES
    xs = [x - 5 for x in xs]  # each cell's true count: 6 with the extra unit, 5 without
    ys = [y - 5 for y in ys]
    share = 1.0  # ε 2 over two marginals
    estimate = epsilon_lower_bound(xs, ys, [-1, 0, 1, 2, 3])
    print(f"synthetic marginal: empirical privacy loss ≥ {estimate:.3f}, ε share {share}")
    assert estimate <= share, f"privacy loss {estimate:.3f} > ε share {share}"
    assert estimate > 0.25 * share, "the test must be able to see the privacy loss at all"


def test_utility_and_risk_report_the_table_against_its_source(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    """`sqlanon utility` and `sqlanon risk` on a refreshed table: the pairs the structure keeps
    are close to the source's at a large ε, the others are not constrained; a model trained on
    the synthetic rows predicts salary-class; the risk shares add up."""
    import json

    db = str(tmp_path / "s.duckdb")
    engine = DuckDBEngine(db)
    text = policy_text(rows="3000", epsilon="100", budget="100")
    plan = install(engine, adult(3000), text)
    refresh(plan, dialect.get("duckdb"), engine, epoch=1)
    engine.close()
    policy = tmp_path / "synthetic.yml"
    policy.write_text(text)
    result = cli("utility", str(policy), "--db", db, "--format", "json", "--target", "salary-class")
    assert result.exit_code == 0, result.output
    (u,) = json.loads(result.output)["synthetic"]
    assert u["epoch"] == 1 and u["rows"] == 3000 and u["source_rows"] == 3000
    kept = [p["distance"] for p in u["two_way"] if p["kept"]]
    assert len(kept) == 8 and max(kept) < 0.05
    assert len(u["two_way"]) == 36 and u["two_way_max"] > max(kept)
    trained = {m["trained_on"]: m for m in u["models"]}
    assert trained["synthetic"]["auc"] > 0.75 and trained["real"]["auc"] > 0.75
    html = tmp_path / "report.html"
    result = cli(
        "utility", str(policy), "--db", db, "--html", str(html), "--target", "salary-class"
    )
    assert result.exit_code == 0, result.output
    page = html.read_text()
    assert "Synthetic table: synth.adult" in page and "<td>pairs kept (structure)</td>" in page
    assert "<td>synthetic</td>" in page  # the model trained on it
    result = cli("risk", str(policy), "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    (r,) = json.loads(result.output)["synthetic"]
    assert r["rows"] == 3000
    assert abs(r["exact"] + r["one_off"] + r["farther"] - 1) < 1e-9
    assert 0 <= r["exact_unique"] <= r["exact"]


def test_a_row_with_a_value_outside_its_domain_is_not_used(duck_adult) -> None:  # type: ignore[no-untyped-def]
    """NULL, a value the domain does not list, or an age the bucket maps nowhere listed: the
    row counts in no marginal (before: the domain's last value took it)."""
    rows = adult(50)
    hostile = [
        ("Male", 39, "White", None, "Bachelors", "United-States", "Private", "Sales", ">50K"),
        ("Other-sex", 39, "White", "Divorced", "Bachelors", "Canada", "Private", "Sales", ">50K"),
        ("Male", 39, "White", "Divorced", "Bachelors", "Atlantis", "Private", "Sales", ">50K"),
        ("Male", None, "White", "Divorced", "Bachelors", "Canada", "Private", "Sales", ">50K"),
    ]
    plan = install(duck_adult, rows + hostile, policy_text(rows="10"))
    (s,) = plan.synthetic
    d = dialect.get("duckdb")
    true = marginals_query(s, d, d.number(1), noise=False)
    counts = duck_adult.query(d.statement("select_query", true).text)
    per_marginal: Counter[int] = Counter()
    for m, _i, _j, n in counts:
        per_marginal[int(m)] += int(n)
    assert set(per_marginal.values()) == {50}, per_marginal


@pytest.mark.parametrize("rows", ["noisy", "25"])
def test_an_empty_source_still_refreshes(duck_adult, rows: str) -> None:  # type: ignore[no-untyped-def]
    """No row at all: every marginal is noise, every weight may be zero (equal weights then);
    the refresh writes rows of the domains or none, and never fails."""
    plan = install(duck_adult, [], policy_text(rows=rows))
    (report,) = refresh(plan, dialect.get("duckdb"), duck_adult, epoch=1)
    if rows == "25":
        assert report.groups == 25
    (s,) = plan.synthetic
    for row in drawn(duck_adult, plan):
        assert all(v in a.domain for v, a in zip(row[1:], s.attributes, strict=True))


def test_a_view_is_scored_on_the_same_task(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    """`utility --target` trains on the 5-anonymous Adult view too (a pseudonym would be left
    out: direct identifiers are not features), beside the raw ceiling."""
    import json

    db = str(tmp_path / "v.duckdb")
    csv_path = REPO / "examples/adult/adult.csv"
    view_policy = str(REPO / "examples/adult/policy.yml")
    result = cli("apply", view_policy, "--db", db, "--csv", f"raw.adult={csv_path}")
    assert result.exit_code == 0, result.output
    result = cli("utility", view_policy, "--db", db, "--format", "json", "--target", "salary-class")
    assert result.exit_code == 0, result.output
    (view,) = json.loads(result.output)["views"]
    trained = {m["trained_on"]: m for m in view["models"]}
    assert set(trained) == {"view", "real"} and trained["view"]["positive"] == ">50K"
    assert trained["view"]["auc"] > 0.8 and trained["real"]["auc"] > 0.8
    result = cli("utility", view_policy, "--db", db, "--target", "nothing-such")
    assert result.exit_code != 0 and "no view or synthetic table has that column" in result.output


def test_monitor_follows_a_synthetic_table(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    """`sqlanon monitor` stores each run's distances and exact-match share for the latest
    epoch without flagging them (every refresh draws new rows), and flags a declared check
    that stops holding, as a view's."""
    import json

    db = str(tmp_path / "s.duckdb")
    engine = DuckDBEngine(db)
    text = policy_text(rows="1000", epsilon="3", budget="10")
    plan = install(engine, adult(2000), text)
    refresh(plan, D, engine, epoch=1)
    engine.close()
    check = "    utility:\n      - {check: pair_distance, columns: [salary-class, sex], max: 0.5}\n"
    policy = tmp_path / "synthetic.yml"
    policy.write_text(text + check)
    first = cli("monitor", str(policy), "--db", db, "--format", "json")
    assert first.exit_code == 0, first.output
    figures = json.loads(first.output)["figures"]
    assert figures["synth.adult: epoch"] == 1 and figures["synth.adult: rows"] == 1000
    assert 0 < figures["synth.adult: mean 2-way distance"] < 0.3
    assert 0 <= figures["synth.adult: exact matches"] <= 1
    assert figures["synth.adult: total-variation distance of salary-class × sex ≤ 0.5"] == 1

    engine = DuckDBEngine(db)
    refresh(plan, D, engine, epoch=2)  # new rows, new distances: stored, not flagged
    engine.close()
    second = cli("monitor", str(policy), "--db", db, "--format", "json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["figures"]["synth.adult: epoch"] == 2

    policy.write_text(text + check.replace("max: 0.5", "max: 0"))
    third = cli("monitor", str(policy), "--db", db)
    assert third.exit_code == 1
    assert "synth.adult: total-variation distance of salary-class × sex ≤ 0" in third.output
    assert "no longer holds" in third.output
