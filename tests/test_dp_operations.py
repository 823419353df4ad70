"""Attacks on DP releases in operation, as sequences of refreshes, edits and policies (issue
13): what an analyst learns by comparing outputs across re-runs, policy edits, shared keys and
same-named policies must be what fresh, independent noise allows — and what the ledger charged.

Each test states the attack, then bounds what it recovers by what independent noise predicts.
The predictions are computed here from the declared ε with the discrete Laplace law written
out below, not with sqlanon's own mechanism code."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

from sqlanon.plan.build import build_plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.warehouse.apply import RefreshRefused, create_key_tables, refresh
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

D = dialect.get("duckdb")
NOISE_KEY = b"noise key for the operations tests"
GROUPS = 200
UNITS = 50  # per group, one row each


def policy(
    epsilon: float = 0.2,
    measures: str = "{rows: {agg: count}}",
    budget: float = 10,
    name: str = "ops",
    source: str = "raw.src",
    target: str = "out.counts",
    keys: str = "privacy.keys",
) -> str:
    groups = ", ".join(str(g) for g in range(GROUPS))
    return f"""
sqlanon: 1
name: {name}
keys: {{table: {keys}}}
releases:
  r:
    source: {source}
    target: {target}
    privacy_unit: u
    unit_type: integer
    epsilon: {epsilon}
    group_by: {{g: {{transform: keep, type: integer}}}}
    groups: {{public: [{groups}]}}
    measures: {measures}
budget: {{epsilon: {budget}}}
"""


def install(engine: DuckDBEngine, tmp_path: Path, text: str, file: str = "p.yml"):  # type: ignore[no-untyped-def]
    path = tmp_path / file
    path.write_text(text)
    plan = build_plan([load_policy(path)])
    create_key_tables(plan, D, engine)
    for table in plan.key_tables:
        store(engine, D, table, "noise", 1, NOISE_KEY, replace=True)
    return plan


@pytest.fixture
def duck():
    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA raw")
    engine.execute(
        f"CREATE TABLE raw.src AS SELECT g, g * 1000 + k AS u, 10.0 AS v "
        f"FROM range({GROUPS}) AS a(g), range({UNITS}) AS b(k)"
    )
    yield engine
    engine.close()


def released(engine: DuckDBEngine, target: str, column: str, epoch: int) -> dict[int, float]:
    rows = engine.query(f"SELECT g, {column} FROM {target} WHERE epoch = {epoch}")
    return {int(g): v for g, v in rows}


# -- what independent discrete Laplace noise predicts -------------------------------------------


def pmf(epsilon: float, sensitivity: float = 1.0):  # type: ignore[no-untyped-def]
    p = math.exp(-epsilon / sensitivity)
    return lambda z: (1 - p) / (1 + p) * p ** abs(z)


def p_equal(eps1: float, eps2: float) -> float:
    """P(Z1 = Z2) for independent discrete Laplace noises of counts (sensitivity 1)."""
    f, g = pmf(eps1), pmf(eps2)
    return sum(f(z) * g(z) for z in range(-2000, 2001))


def at_most(n: int, p: float, alpha: float = 1e-6) -> int:
    """A count of successes in n independent trials of probability p exceeded with
    probability below alpha."""
    return int(stats.binom.isf(alpha, n, p)) + 1


# -- 1. re-running an epoch after the data changed --------------------------------------------


def test_rerunning_an_epoch_after_a_late_row_does_not_point_at_the_changed_group(duck, tmp_path):
    """Before: the noise was a function of the true value, so only the group that got the late
    row changed its output (199 of 200 unchanged). Now every re-run draws fresh noise: each
    group is unchanged with the same small probability, the changed one included."""
    plan = install(duck, tmp_path, policy(epsilon=0.2, budget=0.4))
    refresh(plan, D, duck, epoch=5)
    first = released(duck, "out.counts", "rows", 5)
    duck.execute("INSERT INTO raw.src VALUES (17, 999999, 10.0)")
    refresh(plan, D, duck, epoch=5)
    second = released(duck, "out.counts", "rows", 5)
    unchanged = sum(first[g] == second[g] for g in first)
    assert unchanged <= at_most(GROUPS, p_equal(0.2, 0.2)), (
        f"{unchanged} of {GROUPS} groups kept their output: the noise was reused"
    )
    spent = duck.query("SELECT count(*), sum(epsilon) FROM privacy.sqlanon_ledger")
    assert spent == [(2, pytest.approx(0.4))], "both refreshes are charged"


def test_rerunning_an_unchanged_epoch_also_draws_fresh_noise_and_is_charged(duck, tmp_path):
    plan = install(duck, tmp_path, policy(epsilon=0.2, budget=0.4))
    refresh(plan, D, duck, epoch=5)
    first = released(duck, "out.counts", "rows", 5)
    assert released(duck, "out.counts", "rows", 5) == first, "re-reading gives the stored answer"
    refresh(plan, D, duck, epoch=5)
    second = released(duck, "out.counts", "rows", 5)
    assert sum(first[g] == second[g] for g in first) <= at_most(GROUPS, p_equal(0.2, 0.2))
    assert len(duck.query("SELECT * FROM out.counts WHERE epoch = 5")) == GROUPS


# -- 2. re-running after a policy edit ----------------------------------------------------------


def test_an_epsilon_edit_does_not_let_two_outputs_cancel_their_noise(duck, tmp_path):
    """Before: ε 0.2 → 0.4 reused the same uniforms at half the scale, and 2·y2 − y1 was
    within ±1 of the true count in every group."""
    plan = install(duck, tmp_path, policy(epsilon=0.2, budget=1))
    refresh(plan, D, duck, epoch=5)
    y1 = released(duck, "out.counts", "rows", 5)
    plan = install(duck, tmp_path, policy(epsilon=0.4, budget=1))
    refresh(plan, D, duck, epoch=5)
    y2 = released(duck, "out.counts", "rows", 5)
    recovered = sum(abs(2 * y2[g] - y1[g] - UNITS) <= 1 for g in y1)
    # 2·Z2 − Z1 with independent Z1 (ε 0.2) and Z2 (ε 0.4) lands in [−1, 1] with probability:
    f, h = pmf(0.2), pmf(0.4)
    p = sum(
        f(z1) * h(z2) for z1 in range(-400, 401) for z2 in range(-200, 201) if abs(2 * z2 - z1) <= 1
    )
    assert recovered <= at_most(GROUPS, p), f"{recovered} of {GROUPS} true counts recovered"


def test_adding_a_measure_does_not_let_two_outputs_cancel_their_noise(duck, tmp_path):
    """Before: adding a measure changed each share 1/2 → 1/3 over the same uniforms, and
    3·y1 − 2·y2 gave the true count within a few units."""
    two = "{units: {agg: count_units}, rows: {agg: count}}"
    three = two.replace("}}", "}, total: {agg: sum, column: v, clamp: [0, 20]}}")
    plan = install(duck, tmp_path, policy(epsilon=0.6, measures=two, budget=2))
    refresh(plan, D, duck, epoch=5)
    y1 = released(duck, "out.counts", "rows", 5)
    duck.execute("DROP TABLE out.counts")  # the table gains columns: redeployed
    plan = install(duck, tmp_path, policy(epsilon=0.6, measures=three, budget=2))
    refresh(plan, D, duck, epoch=5)
    y2 = released(duck, "out.counts", "rows", 5)
    recovered = sum(abs(3 * y1[g] - 2 * y2[g] - UNITS) <= 4 for g in y1)
    f, h = pmf(0.3), pmf(0.2)
    p = sum(
        f(z1) * h(z2)
        for z1 in range(-300, 301)
        for z2 in range(-400, 401)
        if abs(3 * z1 - 2 * z2) <= 4
    )
    assert recovered <= at_most(GROUPS, p), f"{recovered} of {GROUPS} true counts recovered"


# -- 3. budget enforced by the refresh itself ---------------------------------------------------


def test_a_refresh_that_would_overspend_the_epoch_is_refused_before_it_writes(duck, tmp_path):
    plan = install(duck, tmp_path, policy(epsilon=0.2, budget=0.2))
    refresh(plan, D, duck, epoch=1)
    before = duck.query("SELECT * FROM out.counts ORDER BY g")
    with pytest.raises(RefreshRefused, match="budget"):
        refresh(plan, D, duck, epoch=1)
    assert duck.query("SELECT * FROM out.counts ORDER BY g") == before
    assert duck.query("SELECT count(*) FROM privacy.sqlanon_ledger") == [(1,)]
    refresh(plan, D, duck, epoch=2)  # another epoch has its own budget
    refresh(plan, D, duck, epoch=1, allow_overspend=True)
    rows = duck.query("SELECT epoch, overspend FROM privacy.sqlanon_ledger ORDER BY refresh")
    assert rows == [(1, False), (2, False), (1, True)], "an allowed overspend is recorded"


def test_the_compiled_refresh_file_enforces_the_budget_without_the_cli(duck, tmp_path):
    """The check is in the SQL: an operator running the file twice gets an error the second
    time, on every dialect (the cross-engine test runs the same statements)."""
    from sqlanon.sql.releases import ledger_statements, release_statements

    plan = install(duck, tmp_path, policy(epsilon=0.2, budget=0.3))
    (r,) = plan.releases
    for s in ledger_statements(r.ledger, D):
        duck.execute(s.text)
    duck.execute("CREATE SCHEMA out")
    duck.set_epoch(3)
    for s in release_statements(r, D):
        duck.execute(s.text)
    with pytest.raises(Exception, match="over the budget"):
        for s in release_statements(r, D):
            duck.execute(s.text)
    duck.execute("ROLLBACK")


# -- 4. keys have one purpose -------------------------------------------------------------------

KEY_REUSE = """
sqlanon: 1
name: reuse
keys: {table: privacy.keys}
tables:
  t:
    source: raw.src
    target: out.t
    columns:
      g: keep
      u: {transform: pseudonymize, key: noise}
releases:
  r:
    source: raw.src
    target: out.r
    privacy_unit: u
    epsilon: 1
    groups: {public: ["0"]}
    group_by: {g: keep}
    measures: {rows: {agg: count}}
budget: {epsilon: 1}
"""


def test_a_release_key_cannot_be_used_by_a_column_transform(tmp_path):
    path = tmp_path / "reuse.yml"
    path.write_text(KEY_REUSE)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    text = err.value.render()
    assert "key 'noise'" in text and "one purpose" in text
    assert "reuse.yml:11:" in text, "located at the column that reuses the key"


def test_every_keyed_hash_carries_its_purpose(duck, tmp_path):
    """The same secret loaded under two names still gives unrelated hashes per purpose: a
    pseudonym of any text is HMAC(key, 'pseudonym|' + text), never a noise or rank message."""
    import hashlib
    import hmac

    from sqlanon.warehouse.keys import pads

    text = KEY_REUSE.replace("key: noise}", "key: customer}")
    plan = install(duck, tmp_path, text)
    # `keys load` refuses one secret under two names; written by hand, as a careless admin would
    inner, outer = pads(NOISE_KEY)
    duck.execute("INSERT INTO privacy.keys VALUES ('customer', 1, ?, ?)", [inner, outer])
    from sqlanon.warehouse.apply import create

    create(plan, D, duck)
    (got,) = duck.query("SELECT u FROM out.t WHERE g = 3 AND u IS NOT NULL LIMIT 1")
    (raw,) = duck.query("SELECT u FROM raw.src WHERE g = 3 LIMIT 1")
    want = hmac.new(NOISE_KEY, f"pseudonym|{raw[0]}".encode(), hashlib.sha256).hexdigest()
    assert got[0] == want


# -- 5. policies that share a name --------------------------------------------------------------


def test_a_table_written_by_one_policy_is_refused_to_another(duck, tmp_path):
    """A release's identity in the warehouse is its target table: a second policy (or another
    release) writing the same table would overwrite the first one's epochs."""
    duck.execute("CREATE TABLE raw.other AS SELECT * FROM raw.src")
    a = install(duck, tmp_path, policy(name="first"), "a.yml")
    b = install(duck, tmp_path, policy(name="second", source="raw.other"), "b.yml")
    refresh(a, D, duck, epoch=1)
    before = duck.query("SELECT * FROM out.counts ORDER BY g")
    with pytest.raises(RefreshRefused, match="written by another release"):
        refresh(b, D, duck, epoch=1)
    assert duck.query("SELECT * FROM out.counts ORDER BY g") == before


def test_same_named_policies_sharing_a_ledger_draw_independent_noise(duck, tmp_path):
    """Before: same policy and release name, same key, equal true counts: equal outputs in
    every epoch. Their refreshes now have distinct nonces and targets; the ledger pools their
    spend under the one name (conservative)."""
    duck.execute("CREATE TABLE raw.other AS SELECT * FROM raw.src")
    a = install(duck, tmp_path, policy(name="same"), "a.yml")
    b = install(
        duck, tmp_path, policy(name="same", source="raw.other", target="out.other"), "b.yml"
    )
    refresh(a, D, duck, epoch=1)
    refresh(b, D, duck, epoch=1)
    x = released(duck, "out.counts", "rows", 1)
    y = released(duck, "out.other", "rows", 1)
    assert sum(x[g] == y[g] for g in x) <= at_most(GROUPS, p_equal(0.2, 0.2))


def test_same_named_policies_on_separate_ledgers_draw_independent_noise(duck, tmp_path):
    """Before: same policy and release name, same key, equal true counts: equal outputs."""
    duck.execute("CREATE TABLE raw.other AS SELECT * FROM raw.src")
    a = install(duck, tmp_path, policy(name="same"), "a.yml")
    b = install(
        duck,
        tmp_path,
        policy(name="same", source="raw.other", target="out.other", keys="privacy2.keys"),
        "b.yml",
    )
    refresh(a, D, duck, epoch=1)
    refresh(b, D, duck, epoch=1)
    x = released(duck, "out.counts", "rows", 1)
    y = released(duck, "out.other", "rows", 1)
    assert sum(x[g] == y[g] for g in x) <= at_most(GROUPS, p_equal(0.2, 0.2))


# -- 6. public groups are values of the group's type -------------------------------------------


def test_public_groups_on_a_float_column_are_typed_and_duplicates_refused(tmp_path):
    text = policy().replace("type: integer}}", "type: float}}")
    bad = text.replace("public: [0, 1,", "public: [0, 1.0, 1,")
    path = tmp_path / "dup.yml"
    path.write_text(bad)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "is the same group as one listed before" in err.value.render()


def test_a_public_group_written_as_1_matches_the_float_value_1(duck, tmp_path):
    duck.execute("CREATE TABLE raw.f AS SELECT CAST(g AS DOUBLE) AS g, u FROM raw.src")
    text = policy(source="raw.f").replace("type: integer}}", "type: float}}")
    plan = install(duck, tmp_path, text)
    (r,) = plan.releases
    from sqlanon.sql.releases import release_query

    rows = duck.query(D.statement("select_all", release_query(r, D, D.number(1), noise=False)).text)
    by_group = {row[1]: row[2] for row in rows}
    assert len(by_group) == GROUPS
    assert set(by_group.values()) == {UNITS}, "every listed group finds its rows"
