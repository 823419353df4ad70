"""`sqlanon utility`: raw vs released measured in the engine, checked against pandas and scipy
on the same rows; declared checks gate the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import duck_frame, retail_database
from scipy import stats

REPO = Path(__file__).resolve().parent.parent
RETAIL = REPO / "examples/retail/policy.yml"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    return retail_database(tmp_path_factory.mktemp("utility") / "shop.duckdb")


@pytest.fixture(scope="module")
def report(shop) -> dict:
    from typer.testing import CliRunner

    from sqlanon.cli.app import app

    result = CliRunner().invoke(
        app, ["utility", str(RETAIL), "--db", str(shop), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _column(report: dict, view: str, column: str) -> dict:
    v = next(v for v in report["views"] if v["view"] == view)
    return next(c for c in v["columns"] if c["column"] == column)


def test_numeric_column_equals_pandas_and_scipy(shop, report):
    raw = duck_frame(shop, "SELECT income FROM raw.customers")["income"].astype(float)
    out = duck_frame(shop, "SELECT income FROM anon.customers")["income"].astype(float)
    c = _column(report, "anon.customers", "income")
    assert c["numeric"] and c["distance_to"] == "raw"
    assert c["raw"]["mean"] == pytest.approx(raw.mean())
    assert c["released"]["mean"] == pytest.approx(out.mean())
    assert c["raw"]["std"] == pytest.approx(raw.std(ddof=0))
    assert c["raw"]["quantiles"] == pytest.approx(list(raw.quantile([0.25, 0.5, 0.75])))
    assert c["released"]["quantiles"] == pytest.approx(list(out.quantile([0.25, 0.5, 0.75])))
    assert c["distance"] == pytest.approx(stats.ks_2samp(raw, out).statistic, abs=1e-12)
    assert c["mean_shift"] == pytest.approx(abs(out.mean() - raw.mean()) / raw.mean())


def test_text_distances_equal_pandas(shop, report):
    raw = duck_frame(shop, "SELECT country FROM raw.customers")["country"]
    out = duck_frame(shop, "SELECT country FROM anon.customers")["country"]
    shares = pd.concat(
        [raw.value_counts(normalize=True), out.value_counts(normalize=True)], axis=1
    ).fillna(0)
    c = _column(report, "anon.customers", "country")
    assert c["distance_to"] == "raw" and not c["numeric"]
    assert c["distance"] == pytest.approx((shares.iloc[:, 0] - shares.iloc[:, 1]).abs().sum() / 2)
    assert (c["raw"]["distinct"], c["released"]["distinct"]) == (raw.nunique(), out.nunique())
    notes = _column(report, "anon.customers", "notes")  # nullify: everything NULL afterwards
    assert notes["released"]["nulls"] == notes["released"]["rows"]


CORR_POLICY = """\
sqlanon: 1
name: corr
tables:
  orders:
    source: raw.orders
    target: anon.orders_banded
    columns:
      amount: {transform: keep, type: decimal}
      amount_band: {column: amount, transform: bucket, width: 100, min: 0, max: 400}
      customer_number: {column: customer_id, transform: keep, type: integer}
    utility:
      - {check: correlation, columns: [amount, amount_band], max_delta: 0.01}
"""


def test_suppression_and_correlations(shop, report, tmp_path, cli):
    v = next(v for v in report["views"] if v["view"] == "anon.customers")
    released = len(duck_frame(shop, "SELECT 1 FROM anon.customers"))
    assert v["released_rows"] == released and v["kept_rows"] == 3000
    assert v["suppressed_share"] == pytest.approx((3000 - released) / 3000)

    policy = tmp_path / "corr.yml"
    policy.write_text(CORR_POLICY)
    assert cli("apply", str(policy), "--db", str(shop)).exit_code == 0
    result = cli("utility", str(policy), "--db", str(shop), "--format", "json")
    (v,) = json.loads(result.output)["views"]
    raw = duck_frame(shop, "SELECT amount, customer_id FROM raw.orders").astype(float)
    out = duck_frame(shop, "SELECT amount, amount_band FROM anon.orders_banded").astype(float)
    pairs = {(c["a"], c["b"]): c for c in v["correlations"]}
    band = pairs[("amount", "amount_band")]
    assert band["raw"] == pytest.approx(1.0)  # both read the same raw column
    assert band["released"] == pytest.approx(out["amount"].corr(out["amount_band"]))
    assert pairs[("amount", "customer_number")]["raw"] == pytest.approx(
        raw["amount"].corr(raw["customer_id"])
    )
    # banding by 100 keeps corr ≈ 0.96: a 0.01 limit fails, naming the measured change
    (check,) = v["checks"]
    assert not check["ok"] and check["measured"] == pytest.approx(band["delta"])
    assert result.exit_code == 1


def test_release_errors_against_a_plain_group_by(shop, report):
    r = next(r for r in report["releases"] if r["release"] == "analytics.customers_by_country")
    assert r["epoch"] == 1 and r["released_groups"] == 4  # MX is public, and empty
    truth = duck_frame(
        shop, "SELECT country, COUNT(DISTINCT customer_id) AS n FROM raw.customers GROUP BY 1"
    )
    noisy = duck_frame(shop, "SELECT country, customers FROM analytics.customers_by_country")
    both = truth.merge(noisy, on="country")
    rel = ((both["customers"] - both["n"]).abs() / both["n"]).median()
    m = next(m for m in r["measures"] if m["measure"] == "customers")
    assert m["cells"] == len(both) == 3
    assert m["median_relative_error"] == pytest.approx(rel)


def test_a_violated_check_exits_1_naming_it(shop, workdir, cli):
    policy = workdir / "examples/retail/policy.yml"
    policy.write_text(
        policy.read_text().replace(
            "{check: mean_shift, column: income, max: 0.25}",
            "{check: mean_shift, column: income, max: 0.01}",
        )
    )
    result = cli("utility", str(policy), "--db", str(shop))
    assert result.exit_code == 1
    assert "relative shift of mean(income) ≤ 0.01" in result.output
    assert "measured 0.2" in result.output and "FAILED" in result.output
    as_json = cli("utility", str(policy), "--db", str(shop), "--format", "json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["ok"] is False


def test_declared_checks_pass_on_the_example(report):
    checks = [c for v in report["views"] for c in v["checks"]]
    checks += [c for r in report["releases"] for c in r["checks"]]
    assert len(checks) == 4 and all(c["ok"] for c in checks) and report["ok"]


def test_bucketing_keeps_order_as_spearman_says(shop, report):
    """ρ between raw income and its bucket, over the rows before suppression, equals scipy's
    Spearman on the same pairs (the bucket rule written again in pandas); no row is out of
    order, since a bucket's lower bound never decreases as income grows."""
    import numpy as np

    raw = duck_frame(shop, "SELECT income FROM raw.customers")["income"].astype(float)
    bucket = np.clip(np.floor(raw / 25000) * 25000, 0, 150000)  # [150000, ∞) is the last
    c = _column(report, "anon.customers", "income")
    assert c["rank_correlation"] == pytest.approx(stats.spearmanr(raw, bucket).statistic)
    assert c["order_violations"] == 0
    assert _column(report, "anon.customers", "country")["rank_correlation"] is None


def test_chart_bins_follow_the_released_buckets_and_round_numbers():
    """Issue 15: a bucketed column is drawn on its own buckets (a raw value in the bucket it
    was released as), other numbers on round-width bins, dates in calendar order."""
    import datetime as dt

    from sqlanon.measure.utility import _bins, _date_bins

    # raw 3..57 released as 10-wide buckets 0, 10, ..., 50
    rows = sorted(
        [(float(v), 1, 0) for v in range(3, 58, 6)] + [(float(b), 0, 2) for b in range(0, 60, 10)]
    )
    hist = _bins(rows, 10, 12)
    assert [label for label, _, _ in hist] == ["0", "10", "20", "30", "40", "50"]
    assert [a for _, a, _ in hist] == [0.2, 0.1, 0.2, 0.2, 0.1, 0.2]  # 3 9 | 15 | 21 27 | …
    # many released values: round-width bins, labels a reader can read
    rows = [(-449.966 + i * 7.31, 1, 1) for i in range(200)]
    labels = [label for label, _, _ in _bins(rows, 200, 200)]
    assert labels[:3] == ["-500", "-400", "-300"] and len(labels) <= 21
    days = [(dt.date(2019, 1, 1) + dt.timedelta(days=9 * i), 1, 1) for i in range(300)]
    assert [label for label, _, _ in _date_bins(days, 300, 300)][:2] == ["2019", "2020"]
