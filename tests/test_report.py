"""`sqlanon utility --html`: a self-contained report that renders in headless Chromium with no
console errors and no network (a screenshot is saved when it does not)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import engine_unavailable, retail_database

from sqlanon.report import html as html_report

REPO = Path(__file__).resolve().parent.parent
VEGA = html_report.ASSETS / "vega"
RETAIL = REPO / "examples/retail/policy.yml"


def test_vendored_chart_files_are_the_documented_ones():
    table = (VEGA / "README.md").read_text()
    for name in html_report.VEGA_FILES:
        digest = hashlib.sha256((VEGA / name).read_bytes()).hexdigest()
        assert re.search(rf"\| {re.escape(name)} \|[^|]*\| {digest} \|", table), name


def _browser():  # type: ignore[no-untyped-def]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        engine_unavailable("chromium", "the selenium package is not installed")
    if not chromium or not driver:
        engine_unavailable("chromium", "Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


def test_html_report_renders_in_headless_chromium(cli, tmp_path):
    db = retail_database(tmp_path / "shop.duckdb")
    report = tmp_path / "report.html"
    result = cli("utility", str(RETAIL), "--db", str(db), "--html", str(report))
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    assert "http://" not in html.split("<script>")[0] and "<script src" not in html
    assert "raw</b> data" in html  # the warning that the report holds raw aggregates
    # issue 15: what each release promises, the distances explained, no "nan" cells
    assert "ε = 1, δ = 1e-06 per refresh; privacy unit customer_id" in html
    assert "Kolmogorov–Smirnov (KS" in html and "before k-anonymity's suppression" in html
    assert ">nan<" not in html

    browser = _browser()
    try:
        browser.get(report.as_uri())
        from selenium.webdriver.support.ui import WebDriverWait

        total = browser.execute_script("return window.sqlanonChartsTotal")
        assert total >= 10  # class sizes per view and a histogram per non-identifier column
        try:
            WebDriverWait(browser, 30).until(
                lambda b: b.execute_script("return window.sqlanonChartsRendered") == total
            )
        except Exception:
            shot = Path(os.environ.get("SQLANON_ARTIFACTS", tmp_path)) / "report-failure.png"
            browser.save_screenshot(str(shot))
            pytest.fail(f"charts did not render; screenshot at {shot}")
        svgs = browser.execute_script("return document.querySelectorAll('.chart svg').length")
        bars = browser.execute_script(
            "return document.querySelectorAll('.chart svg path[aria-roledescription=bar]').length"
        )
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        if errors or svgs != total or bars == 0:
            shot = Path(os.environ.get("SQLANON_ARTIFACTS", tmp_path)) / "report-failure.png"
            browser.save_screenshot(str(shot))
        assert errors == [], errors
        assert svgs == total and bars > 0
    finally:
        browser.quit()
