"""One policy, the same meaning everywhere: examples/retail executed on every engine over the
same data and keys returns identical rows — pseudonyms, masks, buckets, dates, sampling and
k-anonymity suppression included — and the differentially private releases, whose noise is
derived from the key and the refresh's nonce, so every engine draws the same noise for one
nonce."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import install_retail, load_adult, release_rows, stored_release_rows

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.review.conformance import canonical_value
from sqlanon.sql import dialect
from sqlanon.warehouse import ENGINES
from sqlanon.warehouse.apply import create, refresh, report

REPO = Path(__file__).resolve().parent.parent
TARGETS = [e for e in ENGINES if e in dialect.available()]


CUSTOMERS = 1500  # enough that orders_by_status's groups clear its noisy threshold (~360)


def released_rows(engine, name: str):  # type: ignore[no-untyped-def]
    d = dialect.get(name)
    plan = install_retail(engine, CUSTOMERS, seed=7)
    create(plan, d, engine)
    out = {}
    for view in plan.views:
        rows = engine.query(d.statement("select_all", d.relation(view.target)).text)
        out[view.name] = sorted(tuple(canonical_value(v) for v in r) for r in rows)
    reports = {r.target: (r.source_rows, r.kept_rows, r.view_rows) for r in report(plan, d, engine)}
    for r in refresh(plan, d, engine, epoch=2):
        reports[r.target] = (r.groups,)
    for release in plan.releases:
        stored_release_rows(engine, release)
        out[release.name] = release_rows(engine, release, epoch=2)
    return out, reports


@pytest.fixture(scope="module")
def results(live):
    got = {}
    for name in TARGETS:
        got[name] = released_rows(live.get(name), name)
    return got


def test_every_engine_releases_the_same_rows(results):
    reference_name = TARGETS[0]
    reference, reference_counts = results[reference_name]
    assert {k: len(v) for k, v in reference.items() if k in ("customers", "orders")} == {
        "customers": reference_counts["anon.customers"][2],
        "orders": 4 * CUSTOMERS,
    }
    assert len(reference["web_sessions"]) == reference_counts["anon.web_sessions"][2]
    assert reference_counts["anon.customers"][2] < CUSTOMERS, "k-anonymity suppressed some rows"
    assert len(reference["customers_by_country"]) == 4, "every public group"
    assert len(reference["orders_by_status"]) >= 3, "status-years clear the threshold"
    assert 0 < reference_counts["anon.web_sessions"][2] < 2 * CUSTOMERS, "sampling kept some"
    thresholded = "analytics.orders_by_status_year"  # each engine's own refresh: own noise
    for name, (rows, counts) in results.items():
        assert {k: v for k, v in counts.items() if k != thresholded} == {
            k: v for k, v in reference_counts.items() if k != thresholded
        }, name
        assert counts[thresholded][0] > 0, name
        for table in reference:
            assert rows[table] == reference[table], f"{name}.{table} differs from {reference_name}"


def test_pseudonyms_are_hex_and_join(results):
    rows, _ = results[TARGETS[0]]
    customers = {r[0] for r in rows["customers"]}
    assert all(len(c) == 16 and int(c, 16) >= 0 for c in customers)
    orders_customers = {r[1] for r in rows["orders"]}
    assert len(orders_customers & customers) > 0.6 * len(customers)


@pytest.mark.parametrize("name", TARGETS)
def test_adult_example_is_accepted_by_every_engine(name, live):
    """Every statement of the committed adult example runs on each engine (PostgreSQL's
    server and ZetaSQL's analyzer included), over a sample of the real rows."""
    engine = live.get(name)
    d = dialect.get(name)
    plan = build_plan(load_policies([str(REPO / "examples/adult/policy.yml")]))
    load_adult(engine, d, "raw", limit=400)
    if name == "postgres":
        engine.execute(
            "DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    create(plan, d, engine)
    (r,) = report(plan, d, engine)
    assert r.source_rows == 400 and r.view_rows > 0 and r.k_ok
