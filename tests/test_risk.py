"""`sqlanon risk` and `sqlanon tune`: numbers measured by queries in the engine, checked against
pycanon (an independent library) and against independent pandas counts."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import duck_frame, load_adult, require_module

from sqlanon.measure.risk import measure
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.sql import dialect
from sqlanon.warehouse.duckdb import DuckDBEngine

pycanon = require_module("pycanon.anonymity", "pycanon is in the test extra")

REPO = Path(__file__).resolve().parent.parent
ADULT = REPO / "examples" / "adult"
QI = ["age", "sex", "race", "marital-status", "native-country"]


@pytest.fixture(scope="module")
def adult_db(tmp_path_factory) -> Path:
    """A DuckDB file with raw.adult and the example's view, made by `sqlanon apply`."""
    from typer.testing import CliRunner

    from sqlanon.cli.app import app

    db = tmp_path_factory.mktemp("risk") / "adult.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "apply",
            str(ADULT / "policy.yml"),
            "--db",
            str(db),
            "--csv",
            f"raw.adult={ADULT / 'adult.csv'}",
        ],
    )
    assert result.exit_code == 0, result.output
    return db


def test_adult_risk_equals_pycanon(adult_db, cli):
    result = cli("risk", str(ADULT / "policy.yml"), "--db", str(adult_db), "--format", "json")
    assert result.exit_code == 0, result.output
    (v,) = json.loads(result.output)["views"]
    view = duck_frame(adult_db, "SELECT * FROM anon.adult")
    sens = ["salary-class"]

    assert v["rows"] == len(view) == 29907
    assert v["k"] == pycanon.k_anonymity(view, QI) == 5
    sizes = sorted(view.groupby(QI).size().tolist())
    assert sorted(n for n, c in v["class_sizes"] for _ in range(c)) == sizes
    from pycanon.metrics import sizes_ec  # type: ignore[attr-defined]

    stats = sizes_ec(view, QI)
    assert (v["classes"], v["class_sizes"][0][0], v["class_sizes"][-1][0]) == (
        stats["n_ec"],
        stats["min_ec"],
        stats["max_ec"],
    )
    (s,) = v["sensitive"]
    assert s["column"] == "salary-class" and s["distance"] == "equal"
    assert s["l_distinct"] == pycanon.l_diversity(view, QI, sens) == 1
    assert int(s["l_entropy"]) == pycanon.entropy_l_diversity(view, QI, sens)
    assert s["t"] == pytest.approx(pycanon.t_closeness(view, QI, sens), abs=1e-12)
    # k = 5 over a released table that is its own population's subset: the attacker models
    assert v["prosecutor"]["highest"] == pytest.approx(1 / 5)
    assert v["prosecutor"]["average"] == pytest.approx(v["classes"] / v["rows"])
    assert v["journalist"]["highest"] <= v["prosecutor"]["highest"]
    assert v["marketer"] <= v["journalist"]["highest"]
    assert v["population_rows"] == 30162 and v["sample_uniques"] == 0


ORDERED_POLICY = """\
sqlanon: 1
name: adult_ordered
tables:
  adult:
    source: raw.adult
    target: anon.adult_by_age
    columns:
      sex: keep
      race: keep
      marital-status: {transform: generalize, hierarchy: HIER/marital-status.csv, level: 1}
      age: {transform: keep, type: integer}
    k_anonymity: {quasi_identifiers: [sex, race, marital-status], k: 2, action: suppress}
    t_closeness: {sensitive: age, t: 0.05}
    l_diversity: {sensitive: age, l: 3}
"""


def test_ordered_distance_for_numbers_equals_pycanon(adult_db, tmp_path, cli):
    policy = tmp_path / "ordered.yml"
    policy.write_text(ORDERED_POLICY.replace("HIER", str(ADULT / "hierarchies")))
    assert cli("apply", str(policy), "--db", str(adult_db)).exit_code == 0
    result = cli("risk", str(policy), "--db", str(adult_db), "--format", "json")
    (v,) = json.loads(result.output)["views"]
    view = duck_frame(adult_db, "SELECT * FROM anon.adult_by_age")
    qi, sens = ["sex", "race", "marital-status"], ["age"]
    (s,) = v["sensitive"]
    assert s["distance"] == "ordered"
    t = pycanon.t_closeness(view, qi, sens)
    assert s["t"] == pytest.approx(t, abs=1e-12)
    assert s["l_distinct"] == pycanon.l_diversity(view, qi, sens)
    assert int(s["l_entropy"]) == pycanon.entropy_l_diversity(view, qi, sens)
    # the declared t = 0.05 is not met (t is larger), l = 3 is: exit 1, naming t only
    assert t > 0.05
    assert result.exit_code == 1
    reqs = {r["name"]: r for r in v["requirements"]}
    assert not reqs["t"]["ok"] and reqs["l"]["ok"]
    table = cli("risk", str(policy), "--db", str(adult_db))
    assert table.exit_code == 1
    assert "t for age: required ≤ 0.05" in table.output and "NOT MET" in table.output


def test_risk_exit_codes(adult_db, tmp_path, cli):
    ok = cli("risk", str(ADULT / "policy.yml"), "--db", str(adult_db))
    assert ok.exit_code == 0 and "k: required ≥ 5, measured 5 ok" in ok.output
    missing = cli("risk", str(REPO / "examples/retail/policy.yml"), "--db", str(adult_db))
    assert missing.exit_code == 2 and "sqlanon apply" in missing.output
    assert "Traceback" not in missing.output


def test_population_risks_by_hand():
    """Released classes of sizes (2, 3) drawn from population classes (4, 3): journalist
    highest 1/3, expected re-identifications (2/4 + 3/3) of 5 records."""
    from sqlanon.measure.risk import _population_risks

    journalist, marketer = _population_risks([(2, 4, 1), (3, 3, 1)], rows=5, threshold=4)
    assert journalist.highest == pytest.approx(1 / 3)
    assert marketer == journalist.average == pytest.approx((2 / 4 + 3 / 3) / 5)
    assert journalist.records_at_risk == pytest.approx(3 / 5)


def test_postgres_measures_the_same(adult_db, live, tmp_path):
    """The same risk queries on the real PostgreSQL server give the same numbers."""
    engine = live.get("postgres")
    d = dialect.get("postgres")
    text = (ADULT / "policy.yml").read_text().replace("raw.adult", "risk_raw.adult")
    text = text.replace("anon.adult", "risk_anon.adult").replace("grants: [analyst]", "grants: []")
    policy = tmp_path / "policy.yml"
    policy.write_text(text)
    shutil.copytree(ADULT / "hierarchies", tmp_path / "hierarchies")
    plan = build_plan(load_policies([str(policy)]))
    engine.execute("DROP SCHEMA IF EXISTS risk_raw CASCADE")
    engine.execute("DROP SCHEMA IF EXISTS risk_anon CASCADE")
    load_adult(engine, d, "risk_raw")
    from sqlanon.warehouse.apply import create

    create(plan, d, engine)
    (pg,) = measure(plan, d, engine)
    duck_plan = build_plan(load_policies([str(ADULT / "policy.yml")]))
    e = DuckDBEngine(str(adult_db))
    try:
        (dk,) = measure(duck_plan, dialect.get("duckdb"), e)
    finally:
        e.close()
    assert (pg.rows, pg.k, pg.class_sizes, pg.population_rows) == (
        dk.rows,
        dk.k,
        dk.class_sizes,
        dk.population_rows,
    )
    (ps,), (ds,) = pg.sensitive, dk.sensitive
    assert (ps.l_distinct, ps.distinct_values) == (ds.l_distinct, ds.distinct_values)
    assert ps.t == pytest.approx(ds.t, abs=1e-12)
    assert ps.l_entropy == pytest.approx(ds.l_entropy, abs=1e-9)


# -- tune -----------------------------------------------------------------------------------

TUNE_QI = ["age", "sex", "race", "marital-status", "native-country", "education"]
TUNE_POLICY = """\
# tuned by `sqlanon tune`: this comment and the layout below must survive --write
sqlanon: 1
name: adult_tune
tables:
  adult:
    source: raw.adult
    target: anon.adult_tuned
    columns:
      age: {transform: generalize, hierarchy: hierarchies/age.csv, level: 0, type: integer}
      sex: {transform: generalize, hierarchy: hierarchies/sex.csv, level: 0}
      race: {transform: generalize, hierarchy: hierarchies/race.csv, level: 0}
      marital-status:
        transform: generalize
        hierarchy: hierarchies/marital-status.csv
        level: 0   # tuned
      native-country: {transform: generalize, hierarchy: hierarchies/native-country.csv, level: 0}
      education: {transform: generalize, hierarchy: hierarchies/education.csv, level: 0}
      salary-class: keep
    k_anonymity:
      quasi_identifiers: [age, sex, race, marital-status, native-country, education]
      k: 5
      action: suppress
"""


def _hierarchy(name: str) -> list[list[str]]:
    with (ADULT / "hierarchies" / f"{name}.csv").open() as fh:
        return [row for row in csv.reader(fh, delimiter=";") if row]


def _suppressed(raw: pd.DataFrame, levels: dict[str, int], k: int) -> tuple[int, int]:
    """(rows in classes smaller than k, smallest remaining class), computed in pandas."""
    g = raw.copy()
    for col, lvl in levels.items():
        mapping = {row[0]: row[lvl] for row in _hierarchy(col)}
        g[col] = raw[col].map(lambda x, m=mapping: m.get(x, "*"))
    sizes = g.groupby(list(levels)).size()
    return int(sizes[sizes < k].sum()), int(sizes[sizes >= k].min())


def test_tune_adult_reaches_k5_within_2_percent(adult_db, tmp_path, cli):
    work = tmp_path / "tune"
    shutil.copytree(ADULT / "hierarchies", work / "hierarchies")
    policy = work / "policy.yml"
    policy.write_text(TUNE_POLICY)
    result = cli(
        "tune", str(policy), "--db", str(adult_db), "--max-suppression", "2", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    best = found["best"]
    assert found["lattice_size"] == 720 and found["evaluated"] < 720
    levels = best["levels"]
    assert list(levels) == TUNE_QI
    # every listed minimal node meets the goal (before: only those the search visited said so)
    assert len(found["minimal"]) > 1
    for node in found["minimal"]:
        assert node["meets_goal"], node
        assert node["suppressed"] <= 0.02 * node["rows"]

    # independent count on the raw rows, in pandas
    raw = pd.read_csv(ADULT / "adult.csv", sep=";", dtype=str)
    suppressed, smallest = _suppressed(raw, levels, 5)
    assert suppressed == best["suppressed"] and suppressed <= 0.02 * len(raw)
    assert smallest >= 5
    # least generalized: lowering any one level breaks the goal
    for col in TUNE_QI:
        if levels[col]:
            lower = {**levels, col: levels[col] - 1}
            assert _suppressed(raw, lower, 5)[0] > 0.02 * len(raw), col

    # --write changes only the level digits; the view it defines is 5-anonymous
    before = policy.read_text()
    assert (
        cli(
            "tune", str(policy), "--db", str(adult_db), "--max-suppression", "2", "--write"
        ).exit_code
        == 0
    )
    after = policy.read_text()
    assert after.splitlines()[0] == before.splitlines()[0] and "   # tuned\n" in after
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == sum(1 for lvl in levels.values() if lvl)
    assert cli("apply", str(policy), "--db", str(adult_db)).exit_code == 0
    view = duck_frame(adult_db, "SELECT * FROM anon.adult_tuned")
    assert len(view) == len(raw) - suppressed
    assert view.groupby(TUNE_QI).size().min() >= 5


def test_tune_with_l_diversity_checks_l_on_the_result(adult_db, tmp_path, cli):
    work = tmp_path / "tune_l"
    shutil.copytree(ADULT, work, ignore=shutil.ignore_patterns("build", "adult.csv"))
    policy = work / "policy.yml"
    result = cli(
        "tune",
        str(policy),
        "--db",
        str(adult_db),
        "--max-suppression",
        "2",
        "--l",
        "2",
        "--sensitive",
        "salary-class",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)["best"]
    assert best["l"] >= 2 and best["meets_goal"]
    raw = pd.read_csv(ADULT / "adult.csv", sep=";", dtype=str)
    g = raw.copy()
    for col, lvl in best["levels"].items():
        mapping = {row[0]: row[lvl] for row in _hierarchy(col)}
        g[col] = raw[col].map(lambda x, m=mapping: m.get(x, "*"))
    sizes = g.groupby(QI)["salary-class"].transform("size")
    kept = g[sizes >= 5]
    assert kept.groupby(QI)["salary-class"].nunique().min() >= 2


def test_tune_refuses_what_it_cannot_search(cli, tmp_path, adult_db):
    impossible = cli(
        "tune",
        str(ADULT / "policy.yml"),
        "--db",
        str(adult_db),
        "--k",
        "40000",
    )
    assert impossible.exit_code == 1 and "no level combination meets the goal" in impossible.output
    no_table = cli(
        "tune", str(REPO / "examples/retail/policy.yml"), "--db", str(adult_db), "--table", "nope"
    )
    assert no_table.exit_code == 2 and "customers" in no_table.output


def test_tune_refuses_a_lattice_too_large(cli, adult_db, monkeypatch):
    from sqlanon.measure import tune

    monkeypatch.setattr(tune, "MAX_NODES", 10)  # Adult's policy has 5 × 3 × 3 = 45
    result = cli("tune", str(ADULT / "policy.yml"), "--db", str(adult_db))
    assert result.exit_code == 2 and "the lattice has 45 nodes, more than 10" in result.output


def test_tune_writes_the_k_it_searched_for(adult_db, tmp_path, cli):
    """Before: `tune --k 3` printed a patch that changed levels but left `k: 5` (the policy's
    k) in place, so the written policy did not ask for what was tuned."""
    work = tmp_path / "tune_k"
    shutil.copytree(ADULT, work, ignore=shutil.ignore_patterns("build", "adult.csv"))
    policy = work / "policy.yml"
    args = ("tune", str(policy), "--db", str(adult_db), "--max-suppression", "2", "--k", "3")
    assert cli(*args, "--write").exit_code == 0
    from sqlanon.plan.build import build_plan
    from sqlanon.policy.load import load_policies

    (view,) = build_plan(load_policies([str(policy)])).views
    assert view.k_anonymity is not None and view.k_anonymity.k == 3
