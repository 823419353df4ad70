"""Sources written as SQL, on a schema nobody here wrote: examples/tpch over TPC-H data made
by tpchgen-cli. Its view reads a query joining orders to customers and its release sums an
expression (`l_extendedprice * (1 - l_discount)`) over a three-table join; every engine returns
the same rows, and the true (noise-free) revenue equals Python's own sum of the CSV files."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import FIXED_NONCE, engine_unavailable, release_rows

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.review.conformance import canonical_value
from sqlanon.sql import dialect
from sqlanon.sql.releases import output_columns, release_query
from sqlanon.warehouse import ENGINES
from sqlanon.warehouse.apply import create, create_key_tables
from sqlanon.warehouse.keys import store

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "examples/tpch/policy.yml"
TARGETS = [e for e in ENGINES if e in dialect.available()]
SCALE = "0.001"  # 150 customers, 1,500 orders, about 6,000 line items
# (table, column types) as loaded: the logical types of `create_table`
TABLES = {
    "customer": ("integer", "text", "text", "integer", "text", "decimal", "text", "text"),
    "orders": ("integer", "integer", "text", "decimal", "date", "text", "text", "integer", "text"),
    "lineitem": (
        *("integer",) * 4,
        *("decimal",) * 4,
        "text",
        "text",
        *("date",) * 3,
        *("text",) * 3,
    ),
}
SCHEMAS = ("tpch", "anon", "analytics", "privacy")


def _typed(value: str, type_: str) -> object:
    if type_ == "integer":
        return int(value)
    if type_ == "decimal":
        return Decimal(value)
    if type_ == "date":
        return dt.date.fromisoformat(value)
    return value


@pytest.fixture(scope="module")
def tpch(tmp_path_factory) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    """TPC-H's customer, orders and lineitem at a tiny scale, typed."""
    tool = shutil.which("tpchgen-cli")
    if tool is None:
        engine_unavailable("tpchgen-cli", "not installed (pip install tpchgen-cli)")
    out = tmp_path_factory.mktemp("tpch")
    subprocess.run(
        [str(tool), "csv", "-s", SCALE, "--output-dir", str(out)],
        check=True,
        capture_output=True,
    )
    data = {}
    for table, types in TABLES.items():
        with (out / f"{table}.csv").open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows = [tuple(_typed(v, t) for v, t in zip(r, types, strict=True)) for r in reader]
        data[table] = (header, rows)
    return data


def install(engine, data):  # type: ignore[no-untyped-def]
    d = dialect.get(engine.dialect)
    for schema in SCHEMAS:
        engine.execute(f"DROP SCHEMA IF EXISTS {d.ident(schema).text} CASCADE")
    engine.execute(d.statement("create_schema", d.relation(("tpch",))).text)
    for table, (header, rows) in data.items():
        engine.execute(
            d.statement(
                "create_table",
                d.relation(("tpch", table)),
                [d.ident(h) for h in header],
                column_types=TABLES[table],
            ).text
        )
        engine.load_rows(("tpch", table), rows)
    plan = build_plan(load_policies([str(POLICY)]))
    create_key_tables(plan, d, engine)
    (key_table,) = plan.key_tables
    for key in plan.key_names:
        store(engine, d, key_table, key, 1, f"test key {key}".encode(), replace=True)
    create(plan, d, engine)
    return plan


def outputs(engine, data):  # type: ignore[no-untyped-def]
    d = dialect.get(engine.dialect)
    plan = install(engine, data)
    out = {}
    for view in plan.views:
        rows = engine.query(d.statement("select_all", d.relation(view.target)).text)
        out[view.name] = sorted(tuple(canonical_value(v) for v in r) for r in rows)
    (release,) = plan.releases
    out["release"] = release_rows(engine, release, epoch=1, nonce=FIXED_NONCE)
    true = release_query(release, d, d.number(1), noise=False)
    out["true"] = sorted(
        tuple(canonical_value(v) for v in r)
        for r in engine.query(d.statement("select_query", true).text)
    )
    return out


@pytest.fixture(scope="module")
def results(live, tpch):  # type: ignore[no-untyped-def]
    return {name: outputs(live.get(name), tpch) for name in TARGETS}


def test_every_engine_gives_the_same_rows(results):  # type: ignore[no-untyped-def]
    first = TARGETS[0]
    assert len(results[first]["orders"]) == 1500
    assert len(results[first]["release"]) == 35, "5 segments × 7 years, all public"
    for name, got in results.items():
        for part, rows in results[first].items():
            assert got[part] == rows, f"{name} {part} differs from {first}"


def test_the_expression_sums_what_python_sums(results, tpch):  # type: ignore[no-untyped-def]
    """revenue = Σ l_extendedprice × (1 − l_discount) per segment and year, from the CSV."""
    customers = {r[0]: r[6] for r in tpch["customer"][1]}
    orders = {r[0]: (customers[r[1]], r[4].year) for r in tpch["orders"][1]}
    revenue: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    lines: dict[tuple[str, int], int] = defaultdict(int)
    for line in tpch["lineitem"][1]:
        revenue[orders[line[0]]] += line[5] * (1 - line[6])
        lines[orders[line[0]]] += 1
    (release,) = build_plan(load_policies([str(POLICY)])).releases
    header = [c for c, _ in output_columns(release)]
    seg, year, total = header.index("segment"), header.index("year"), header.index("revenue")
    # each input is rounded to a whole step of its sum's grid (docs/dp.md): off by at most
    # half a step per line
    (grid,) = {c.granularity for m in release.measures for c in m.components if c.name == "sum"}
    assert len(results[TARGETS[0]]["true"]) == len(revenue) == 35
    for row in results[TARGETS[0]]["true"]:
        key = (row[seg], int(str(row[year])[:4]))
        error = abs(Fraction(str(row[total])) - Fraction(revenue[key]))
        assert error <= lines[key] * grid / 2, key
