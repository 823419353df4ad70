"""`sqlanon explain --format markdown`: the auditor's data sheet lists every view and release
with what is kept, transformed and dropped, the privacy model and the keys by name."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_data_sheet_of_the_retail_example(cli, monkeypatch):
    monkeypatch.chdir(REPO)
    result = cli("explain", "examples/retail/policy.yml", "--format", "markdown")
    assert result.exit_code == 0
    md = result.output
    for obj in (
        "View `anon.customers`",
        "View `anon.orders`",
        "View `anon.web_sessions`",
        "Release `analytics.orders_by_status_year`",
        "Release `analytics.customers_by_country`",
    ):
        assert f"## {obj}" in md
    assert "11 of 12 listed columns released: 2 kept as is, 9 transformed, 1 dropped" in md
    assert "| full_name | full_name | dropped | direct id | source type |" in md
    assert "| country | country | kept as is | quasi-id | source type → source type |" in md
    assert "k-anonymity: k=5 over age_band, gender, zip, country" in md
    assert "ε = 1, δ = 1e-06 per refresh, protecting each `customer_id`" in md
    assert "keys read: `customer` v1, `order` v1" in md
    assert "## Privacy budget" in md and "spend ε=1.5 of 2" in md
