"""dp_release: a TPC-H Q1-style differentially private release compiled by sqlanon and run in
DuckDB, against the same non-private GROUP BY (time) and against SmartNoise SQL answering the
same query on the same data with the same bounds and the same total ε (error). One table.

    pip install tpchgen-cli smartnoise-sql
    python benchmarks/dp_release.py [--scale 1] [--runs 5] [--data /tmp/tpch]

Both systems bound each order (the privacy unit) to 7 rows (SmartNoise `max_ids: 7`; sqlanon
`max_rows_per_unit: 7`), clamp l_quantity to [0, 50] and l_extendedprice to [0, 105000], select
groups by a noisy threshold with δ = 1e-6, and spend ε = 1 in total on the query. SmartNoise
spends its ε per aggregate column (its `get_privacy_cost` reports the total), so it is given
the per-column ε whose reported total is ε = 1. The error is |released − true| / |true|
against the exact Q1 answer over all rows, its median over every group × measure × run.
Targets (issue 4): release time ≤ 3 × the GROUP BY; median relative error ≤ SmartNoise's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.releases import ledger_statements
from sqlanon.warehouse.apply import create_key_tables, run_release
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

EPSILON, DELTA, ROWS_PER_ORDER = 1.0, 1e-6, 7
QTY, PRICE = (0, 50), (0, 105000)
MEASURES = ("count_order", "sum_qty", "sum_base_price", "avg_qty", "avg_price")

POLICY = f"""
sqlanon: 1
name: tpch
keys: {{table: privacy.sqlanon_keys}}
tables: {{}}
releases:
  q1:
    source: tpch.lineitem
    target: out.q1
    privacy_unit: l_orderkey
    unit_type: integer
    epsilon: {EPSILON}
    delta: {DELTA}
    group_by: {{l_returnflag: keep, l_linestatus: keep}}
    groups: {{threshold: auto}}
    bounds: {{max_rows_per_unit: {ROWS_PER_ORDER}}}
    measures:
      count_order: {{agg: count}}
      sum_qty: {{agg: sum, column: l_quantity, clamp: [{QTY[0]}, {QTY[1]}]}}
      sum_base_price: {{agg: sum, column: l_extendedprice, clamp: [{PRICE[0]}, {PRICE[1]}]}}
      avg_qty: {{agg: avg, column: l_quantity, clamp: [{QTY[0]}, {QTY[1]}]}}
      avg_price: {{agg: avg, column: l_extendedprice, clamp: [{PRICE[0]}, {PRICE[1]}]}}
budget: {{epsilon: {EPSILON}, delta: {DELTA}}}
"""

Q1 = """SELECT l_returnflag, l_linestatus, COUNT(*) AS count_order,
  SUM(l_quantity) AS sum_qty, SUM(l_extendedprice) AS sum_base_price,
  AVG(l_quantity) AS avg_qty, AVG(l_extendedprice) AS avg_price
FROM {table} GROUP BY l_returnflag, l_linestatus"""

# What any per-unit contribution bound costs at least: one pass grouping by unit and group.
FLOOR = """SELECT COUNT(*) FROM (SELECT l_orderkey, l_returnflag, l_linestatus, COUNT(*),
  SUM(l_quantity), SUM(l_extendedprice) FROM tpch.lineitem GROUP BY 1, 2, 3) AS partials"""


def lineitem(scale: float, data: Path) -> Path:
    """TPC-H lineitem as Parquet, generated once per scale factor."""
    out = data / f"sf{scale:g}"
    path = out / "lineitem.parquet"
    if not path.exists():
        exe = shutil.which("tpchgen-cli")
        if exe is None:
            raise SystemExit("tpchgen-cli is not installed: pip install tpchgen-cli")
        subprocess.run(
            [exe, "parquet", "-s", f"{scale:g}", "--tables=lineitem", f"--output-dir={out}"],
            check=True,
        )
    return path


def cells(rows: list[tuple], names: tuple[str, ...]) -> dict[tuple[str, str, str], float]:  # type: ignore[type-arg]
    """{(returnflag, linestatus, measure): value} from rows of (flag, status, *names)."""
    return {(r[0], r[1], m): float(r[2 + i]) for r in rows for i, m in enumerate(names)}


def relative_errors(
    released: dict[tuple[str, str, str], float], truth: dict[tuple[str, str, str], float]
) -> list[float]:
    """A group left out by the threshold counts as a 100 % error."""
    return [abs(released[k] - v) / abs(v) if k in released else 1.0 for k, v in truth.items() if v]


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_sqlanon(parquet: Path, runs: int, workdir: Path):  # type: ignore[no-untyped-def]
    d = dialect.get("duckdb")
    engine = DuckDBEngine()
    engine.execute("CREATE SCHEMA tpch")
    engine.execute(
        "CREATE TABLE tpch.lineitem AS SELECT l_orderkey, l_returnflag, l_linestatus, "
        "CAST(l_quantity AS DOUBLE) AS l_quantity, "
        "CAST(l_extendedprice AS DOUBLE) AS l_extendedprice FROM read_parquet(?)",
        (str(parquet),),
    )
    (workdir / "tpch.yml").write_text(POLICY)
    plan = build_plan([load_policy(workdir / "tpch.yml")])
    (r,) = plan.releases
    create_key_tables(plan, d, engine)
    store(engine, d, r.key_table, "noise", 1, b"dp_release benchmark noise key!!")
    for s in ledger_statements(r.ledger, d):
        engine.execute(s.text)
    engine.execute("CREATE SCHEMA out")

    truth_rows: list[tuple] = []  # type: ignore[type-arg]
    group_by = [
        timed(
            lambda: truth_rows.__setitem__(
                slice(None), engine.query(Q1.format(table="tpch.lineitem"))
            )
        )
        for _ in range(3)
    ]
    floor = statistics.median(timed(lambda: engine.query(FLOOR)) for _ in range(3))
    release_times, errors = [], []
    for epoch in range(1, runs + 1):
        engine.set_epoch(epoch)
        release_times.append(timed(lambda: run_release(r, d, engine)))
        rows = engine.query(
            f"SELECT l_returnflag, l_linestatus, {', '.join(MEASURES)} FROM out.q1 "
            f"WHERE epoch = {epoch}"
        )
        errors += relative_errors(cells(rows, MEASURES), cells(truth_rows, MEASURES))
    engine.close()
    times = (statistics.median(group_by), floor, statistics.median(release_times))
    return truth_rows, times, errors


def run_postgres(parquet: Path, runs: int, workdir: Path) -> tuple[float, float, float]:
    """The same release on a private PostgreSQL server (sqlanon.testing's, default settings):
    (GROUP BY, floor, release) seconds. Loaded with COPY from a CSV DuckDB writes."""
    from sqlanon.testing.postgres_server import private_server
    from sqlanon.warehouse.postgres import PostgresEngine

    d = dialect.get("postgres")
    csv = workdir / "lineitem.csv"
    DuckDBEngine().execute(
        f"COPY (SELECT l_orderkey, l_returnflag, l_linestatus, CAST(l_quantity AS DOUBLE), "
        f"CAST(l_extendedprice AS DOUBLE) FROM read_parquet('{parquet}')) TO '{csv}' "
        "(HEADER false)"
    )
    with private_server() as dsn:
        engine = PostgresEngine(dsn)
        engine.execute("CREATE SCHEMA tpch")
        engine.execute(
            "CREATE TABLE tpch.lineitem (l_orderkey BIGINT, l_returnflag TEXT, "
            "l_linestatus TEXT, l_quantity DOUBLE PRECISION, l_extendedprice DOUBLE PRECISION)"
        )
        copy_in = "COPY tpch.lineitem FROM STDIN (FORMAT csv)"
        with engine.conn.cursor().copy(copy_in) as copy, csv.open() as fh:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        engine.execute("ANALYZE tpch.lineitem")
        (workdir / "tpch.yml").write_text(POLICY)
        plan = build_plan([load_policy(workdir / "tpch.yml")])
        (r,) = plan.releases
        create_key_tables(plan, d, engine)
        store(engine, d, r.key_table, "noise", 1, b"dp_release benchmark noise key!!")
        for s in ledger_statements(r.ledger, d):
            engine.execute(s.text)
        engine.execute("CREATE SCHEMA out")
        q1 = Q1.format(table="tpch.lineitem")
        group_by = statistics.median(timed(lambda: engine.query(q1)) for _ in range(3))
        floor = statistics.median(timed(lambda: engine.query(FLOOR)) for _ in range(3))
        times = []
        for epoch in range(1, runs + 1):
            engine.set_epoch(epoch)
            times.append(timed(lambda: run_release(r, d, engine)))
        engine.close()
    return group_by, floor, statistics.median(times)


def run_smartnoise(parquet: Path, truth_rows: list[tuple], runs: int):  # type: ignore[no-untyped-def, type-arg]
    try:
        import pandas as pd
        import snsql
        from snsql import Privacy
        from snsql.metadata import Metadata
    except ImportError:
        raise SystemExit("smartnoise-sql is not installed: pip install smartnoise-sql") from None
    columns = ["l_orderkey", "l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice"]
    df = pd.read_parquet(parquet, columns=columns)
    df["l_quantity"] = df["l_quantity"].astype(float)
    df["l_extendedprice"] = df["l_extendedprice"].astype(float)
    table = {
        "max_ids": ROWS_PER_ORDER,
        "row_privacy": False,
        "l_orderkey": {"type": "int", "private_id": True},
        "l_returnflag": {"type": "string"},
        "l_linestatus": {"type": "string"},
        "l_quantity": {"type": "float", "lower": QTY[0], "upper": QTY[1]},
        "l_extendedprice": {"type": "float", "lower": PRICE[0], "upper": PRICE[1]},
    }
    metadata = Metadata.from_dict({"tpch": {"public": {"lineitem": table}}})
    query = Q1.format(table="public.lineitem")

    def cost(scale: float) -> tuple[float, float]:
        privacy = Privacy(epsilon=EPSILON * scale, delta=DELTA * scale)
        reader = snsql.from_df(df.head(0), privacy=privacy, metadata=metadata)
        eps, delta = reader.get_privacy_cost([query])
        return float(eps), float(delta)

    lo, hi = 0.0, 1.0  # the per-column share whose total cost is ε = 1 (cost grows with it)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost(mid)[0] <= EPSILON else (lo, mid)
    total = cost(lo)
    reader = snsql.from_df(
        df, privacy=Privacy(epsilon=EPSILON * lo, delta=DELTA * lo), metadata=metadata
    )
    times, errors = [], []
    for _ in range(runs):
        start = time.perf_counter()
        result = reader.execute(query)
        times.append(time.perf_counter() - start)
        header, rows = result[0], result[1:]
        at = [header.index(c) for c in ("l_returnflag", "l_linestatus", *MEASURES)]
        picked = [tuple(row[i] for i in at) for row in rows]
        errors += relative_errors(cells(picked, MEASURES), cells(truth_rows, MEASURES))
    return statistics.median(times), errors, total, 1 / lo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor")
    ap.add_argument("--runs", type=int, default=5, help="releases (epochs) per system")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tpch")
    ap.add_argument("--postgres", action="store_true", help="also on a private PostgreSQL server")
    args = ap.parse_args()

    parquet = lineitem(args.scale, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        truth, (t_group, t_floor, t_release), ours = run_sqlanon(parquet, args.runs, Path(tmp))
    t_sn, theirs, cost, columns = run_smartnoise(parquet, truth, args.runs)

    rows = sum(int(r[2]) for r in truth)
    print(
        f"\nTPC-H lineitem, scale {args.scale:g}: {rows:,} rows, {len(truth)} groups; "
        f"{args.runs} releases each; total ε = {EPSILON}, δ = {DELTA}"
    )
    print(
        f"SmartNoise charges {columns:g} mechanisms: given ε = {EPSILON / columns:.4g} each "
        f"(its reported cost: ε = {float(cost[0]):.3g}, δ = {float(cost[1]):.3g})\n"
    )
    print(f"{'contender':44} {'seconds':>8} {'vs GROUP BY':>12} {'median rel. error':>18}")
    table = [
        ("DuckDB GROUP BY, no privacy", t_group, None),
        ("floor: GROUP BY order and group (no DP)", t_floor, None),
        ("sqlanon release in DuckDB (ε = 1)", t_release, ours),
        ("SmartNoise SQL over pandas (ε = 1)", t_sn, theirs),
    ]
    for name, secs, errs in table:
        err = "—" if errs is None else f"{100 * statistics.median(errs):.3f} %"
        print(f"{name:44} {secs:8.2f} {secs / t_group:11.1f}× {err:>18}")
    print(f"\nrelease / GROUP BY = {t_release / t_group:.2f}  (target ≤ 5, issue 17)")
    if args.postgres:
        with tempfile.TemporaryDirectory() as tmp:
            pg_group, pg_floor, pg_release = run_postgres(parquet, args.runs, Path(tmp))
        print(f"\nPostgreSQL (default settings), {args.runs} refreshes:")
        for name, secs in (
            ("GROUP BY, no privacy", pg_group),
            ("floor: GROUP BY order and group (no DP)", pg_floor),
            ("sqlanon refresh (ε = 1)", pg_release),
        ):
            print(f"{name:44} {secs:8.2f} {secs / pg_group:11.1f}×")
        print(f"refresh / GROUP BY = {pg_release / pg_group:.2f}  (target ≤ 6, issue 17)")
    print(
        f"median relative error: sqlanon {100 * statistics.median(ours):.3f} % vs SmartNoise "
        f"{100 * statistics.median(theirs):.3f} %  (target: ≤ SmartNoise)"
    )


if __name__ == "__main__":
    main()
