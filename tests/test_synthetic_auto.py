"""`structure: auto` (docs/synthetic.md#auto): the tree a refresh chooses privately — its rule
checked against a Python reference, its noise against the Gumbel distribution, and the choice
on neighbouring sources against its ε. Every engine choosing the same tree is in
tests/test_synthetic.py (the five-engine fixture)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from test_synthetic import (
    POLICY,
    adult,
    auto_text,
    consistent,
    install,
    keyed_table,
    policy_text,
)

from sqlanon.plan.build import build_plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.synthetic import marginals_query, synthetic_query, tree_pairs, tree_query
from sqlanon.warehouse.duckdb import DuckDBEngine

D = dialect.get("duckdb")


def query(engine, sql) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return [tuple(r) for r in engine.query(D.statement("select_query", sql).text)]


def tree_of(engine, s, nonce: str) -> list[frozenset[int]]:  # type: ignore[no-untyped-def]
    """The pairs chosen for `nonce`, in the order they joined the tree."""
    (row,) = query(engine, tree_query(s, D, D.number(1), D.string(nonce)))
    return tree_pairs(row, len(s.attributes))


def scores(engine, s, nonce: str) -> dict[int, Fraction]:  # type: ignore[no-untyped-def]
    """Each pair's score as the documented rule computes it, in Python: from the refresh's
    noisy one-ways (read from the warehouse, made consistent by the documented shift) and the
    pair's true counts."""
    noisy = query(engine, marginals_query(s, D, D.number(1), D.string(nonce)))
    true = query(engine, marginals_query(s, D, D.number(1), D.string(nonce), noise=False))
    n = len(s.attributes)
    alone = {(m, i): w for (m, i, _), w in consistent(noisy).items() if m < n}
    totals = Counter[int]()
    for (a, _), w in alone.items():
        totals[a] += w
    out: dict[int, Fraction] = {}
    for m, pair in enumerate(s.marginals):
        if len(pair) < 2:
            continue
        a, b = pair
        den = max(totals[b], 1)
        num = 0
        for mm, i, j, c in true:
            if mm == m:
                num += abs(int(c) * totals[b] - alone[(a, int(i))] * alone[(b, int(j))])
        out[m] = Fraction(num, den)
    return out


def prim(s, score: dict[int, Fraction]) -> list[frozenset[int]]:  # type: ignore[no-untyped-def]
    """The documented rule without noise: from the first attribute, the best pair with one
    end in the tree joins it (ties: the lower marginal)."""
    inside = {0}
    chosen = []
    for _ in range(len(s.attributes) - 1):
        best = max(
            (m for m in score if len(set(s.marginals[m]) & inside) == 1),
            key=lambda m: (score[m], -m),
        )
        chosen.append(frozenset(s.marginals[best]))
        inside |= set(s.marginals[best])
    return chosen


@pytest.fixture(scope="module")
def adult_auto():  # type: ignore[no-untyped-def]
    """Adult's 30,162 rows, `structure: auto` at the largest ε a policy accepts."""
    engine = DuckDBEngine()
    text = policy_text(epsilon="100", budget="100")
    plan = install(engine, adult(40_000), auto_text(text))
    yield engine, plan.synthetic[0]
    engine.close()


def test_the_sql_scores_each_pair_by_the_documented_rule(adult_auto) -> None:  # type: ignore[no-untyped-def]
    engine, s = adult_auto
    want = scores(engine, s, "score@t")
    rows = query(engine, synthetic_query(s, D, D.number(1), D.string("score@t"), part="choices"))
    got = {int(m): Fraction(int(num), int(den)) for _, m, num, den, _ in rows}
    assert got == want
    assert {int(step) for step, *_ in rows} == set(range(1, len(s.attributes)))


def test_at_a_large_epsilon_the_tree_is_the_best_spanning_tree(adult_auto) -> None:  # type: ignore[no-untyped-def]
    """At ε = 100 the scores (in the thousands, × ε_step / 2 = 0.625) dwarf the Gumbel noise:
    every step takes the best pair, as Prim's algorithm does — the maximum spanning tree."""
    engine, s = adult_auto
    for nonce in ("a@t", "b@t"):
        assert tree_of(engine, s, nonce) == prim(s, scores(engine, s, nonce))


def test_the_choice_noise_is_gumbel_at_the_documented_scale(adult_auto) -> None:  # type: ignore[no-untyped-def]
    """key − score × ε_step / 2Δ, over every step and pair of a few refreshes, is standard
    Gumbel (Kolmogorov–Smirnov): the exponential mechanism's weights are exp(ε_step · score
    / 2Δ), no more. Each (step, pair) has its own noise."""
    from scipy import stats

    engine, s = adult_auto
    scale = float(s.selection_epsilon) / (2 * s.max_rows_per_unit)
    noise = []
    for nonce in range(4):
        rows = query(
            engine, synthetic_query(s, D, D.number(1), D.string(f"{nonce}@g"), part="choices")
        )
        noise += [float(g) - int(num) / int(den) * scale for _, _, num, den, g in rows]
    assert len(noise) == 4 * 8 * 36
    assert len(set(noise)) == len(noise)
    p = stats.kstest(noise, stats.gumbel_r.cdf).pvalue
    assert p > 1e-3, f"the choice noise is not standard Gumbel (p = {p:.2g})"


# -- the choice on neighbouring sources, tested as a claim ----------------------------------

NEIGHBOURS = """
sqlanon: 1
name: neighbours
keys: {table: privacy.keys}
budget: {epsilon: 40}
synthetic:
  s:
    source: raw.SOURCE
    target: out.SOURCE
    privacy_unit: u
    unit_type: integer
    max_rows_per_unit: 2
    epsilon: 40
    rows: 1
    attributes:
      x: {transform: bucket, width: 1, min: 0, max: 1}
      y: {transform: bucket, width: 1, min: 0, max: 1}
      z: {transform: bucket, width: 1, min: 0, max: 1}
    structure: auto
"""
REFRESHES = 400


def first_choices(engine, name: str) -> Counter[frozenset[int]]:  # type: ignore[no-untyped-def]
    """The pair the first step chose, for each of REFRESHES refreshes (nonces) of a source."""
    s = keyed_table(engine, NEIGHBOURS.replace("SOURCE", name))
    return Counter(tree_of(engine, s, f"{n}@t")[0] for n in range(REFRESHES))


def test_the_choice_of_the_tree_stays_within_its_epsilon() -> None:
    """The choice alone, tested as a claim. Two sources whose one-ways agree — one unit's two
    rows are (0, 0, 1) and (1, 1, 0) in one, (0, 1, 0) and (1, 0, 1) in the other — so the
    noisy one-ways have one distribution and only the choice can tell the sources apart. The
    unit moves x × y's score up by 2 and x × z's down by 2 in one, the reverse in the other,
    from a base where the two tie: the worst case of the first step, an exponential mechanism
    of ε_step = 40 / 10 / 2 = 2. Replacing a unit is one removal and one addition, so the
    first pair's distribution may move by 2 × ε_step = 4 (the mechanism's own slack makes 2
    the most this data can show). The estimate is the Clopper–Pearson lower bound of the
    largest log ratio of a pair's frequencies (the DP suite's estimator)."""
    from test_dp import epsilon_lower_bound

    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    # x balanced; y and z equal to x but in 4 rows each (different rows): x × y and x × z tie
    base = (
        "SELECT k AS u, k % 2 AS x, CASE WHEN k < 4 THEN 1 - k % 2 ELSE k % 2 END AS y, "
        "CASE WHEN k BETWEEN 4 AND 7 THEN 1 - k % 2 ELSE k % 2 END AS z FROM range(24) r(k)"
    )
    unit = "SELECT 99 AS u, {} AS x, {} AS y, {} AS z"
    engine.execute(
        f"CREATE TABLE raw.one AS {base} UNION ALL "
        f"{unit.format(0, 0, 1)} UNION ALL {unit.format(1, 1, 0)}"
    )
    engine.execute(
        f"CREATE TABLE raw.other AS {base} UNION ALL "
        f"{unit.format(0, 1, 0)} UNION ALL {unit.format(1, 0, 1)}"
    )
    a, b = first_choices(engine, "one"), first_choices(engine, "other")
    labels = sorted(a.keys() | b.keys(), key=repr)
    xs = [labels.index(t) for t, n in a.items() for _ in range(n)]
    ys = [labels.index(t) for t, n in b.items() for _ in range(n)]
    bound = 4.0
    estimate = epsilon_lower_bound(xs, ys, list(range(len(labels))))
    print(f"synthetic tree: empirical privacy loss ≥ {estimate:.3f}, bound {bound}: {a}, {b}")
    assert estimate <= bound, f"privacy loss {estimate:.3f} > {bound}"
    assert estimate > 0.25 * bound, "the test must be able to see the privacy loss at all"


def test_auto_splits_epsilon_into_one_ways_choice_and_pairs() -> None:
    plan = build_plan([load_policy(POLICY, text=auto_text(policy_text()))])
    (s,) = plan.synthetic
    assert s.auto and s.one_ways is not None
    n = len(s.attributes)
    assert s.one_ways.epsilon * n == s.selection_epsilon * (n - 1) == s.epsilon / 10
    assert s.cells.epsilon * (n - 1) == s.epsilon * 8 / 10
    assert len(s.marginals) == n + n * (n - 1) // 2


ONE = NEIGHBOURS.replace("      y: {transform: bucket, width: 1, min: 0, max: 1}\n", "")
ONE = ONE.replace("      z: {transform: bucket, width: 1, min: 0, max: 1}\n", "")
WIDE = NEIGHBOURS.replace("width: 1, min: 0, max: 1}", "width: 1, min: 0, max: 999}")


@pytest.mark.parametrize(
    ("text", "message"),
    [(ONE, "needs two attributes or more"), (WIDE, "cells in all")],
)
def test_auto_limits_are_located_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(POLICY, text=text.replace("SOURCE", "t"))
    (found,) = err.value.diagnostics
    assert message in found.message
    assert found.loc.line == text.splitlines().index("    structure: auto") + 1


def test_utility_shows_the_chosen_pairs_and_its_checks_gate(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    """A refreshed `structure: auto` table: `sqlanon utility` recomputes the tree the epoch
    chose (eight pairs spanning the nine columns) and marks those pairs kept; the policy's
    declared checks pass or fail the command as a view's do."""
    import json

    from sqlanon.warehouse.apply import refresh

    db = str(tmp_path / "s.duckdb")
    engine = DuckDBEngine(db)
    text = auto_text(policy_text(rows="2000", epsilon="100", budget="100"))
    plan = install(engine, adult(2000), text)
    refresh(plan, D, engine, epoch=1)
    engine.close()
    checks = (
        "    utility:\n"
        "      - {check: pair_distance, columns: [age, marital-status], max: 0.5}\n"
        "      - {check: distance, column: sex, max: 0.5}\n"
    )
    policy = tmp_path / "synthetic.yml"
    policy.write_text(text + checks)
    result = cli("utility", str(policy), "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    (u,) = json.loads(result.output)["synthetic"]
    kept = {tuple(p["columns"]) for p in u["two_way"] if p["kept"]}
    assert len(kept) == 8 and len(u["chosen"]) == 8
    names = {n for p in kept for n in p}
    assert len(names) == 9  # a spanning tree: every column in some chosen pair
    assert [c["ok"] for c in u["checks"]] == [True, True]
    policy.write_text(text + checks.replace("max: 0.5}\n", "max: 0}\n"))
    result = cli("utility", str(policy), "--db", db)
    assert result.exit_code != 0
    assert "utility check failed: total-variation distance of age × marital-status" in (
        result.output + (result.stderr if result.stderr_bytes else "")
    )


def test_a_misspelled_check_column_is_located() -> None:
    text = auto_text(policy_text()) + (
        "    utility:\n      - {check: pair_distance, columns: [age, sexx], max: 0.1}\n"
    )
    with pytest.raises(PolicyError) as err:
        load_policy(POLICY, text=text)
    (found,) = err.value.diagnostics
    assert "'sexx' is not a column" in found.message and found.hint and "sex" in found.hint
