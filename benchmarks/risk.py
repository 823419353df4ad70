"""risk: `sqlanon risk` on DuckDB vs pycanon in pandas, on the same generated rows, in one run.
Prints a table of the numbers each computed and the wall-time ratio.

    python benchmarks/risk.py [--rows 1000000]

The view keeps four quasi-identifiers (age band, sex, 3-digit zip, education) and two
sensitive columns (a categorical diagnosis and a numeric income bucket): k, distinct and
entropy l and t (equal distance for the diagnosis, ordered for income) are computed by both,
and must agree before the times count. Target (issue 5): sqlanon ≥ 50 × faster.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pycanon.anonymity as pc
from rich.console import Console
from rich.table import Table

from sqlanon.measure.risk import measure
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.warehouse.apply import create
from sqlanon.warehouse.duckdb import DuckDBEngine

POLICY = """
sqlanon: 1
name: bench_risk
tables:
  patients:
    source: raw.patients
    target: anon.patients
    columns:
      age_band: {column: age, transform: bucket, width: 10, min: 0, max: 90}
      sex: keep
      zip3: {column: zip, transform: prefix, length: 3}
      education: keep
      diagnosis: keep
      income: {transform: bucket, width: 10000, min: 0, max: 200000}
    k_anonymity: {quasi_identifiers: [age_band, sex, zip3, education], k: 2, action: fail}
    l_diversity: {sensitive: diagnosis, l: 2}
    t_closeness: {sensitive: income, t: 1}
"""
QI = ["age_band", "sex", "zip3", "education"]


def generate(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": rng.integers(0, 100, rows),
            "sex": rng.choice(["F", "M"], rows),
            "zip": [f"{z:05d}" for z in rng.integers(10000, 10000 + 20 * 100, rows)],
            "education": rng.choice([f"edu{i}" for i in range(8)], rows),
            "diagnosis": rng.choice([f"dx{i:02d}" for i in range(12)], rows, p=_skewed(12)),
            "income": rng.gamma(2.0, 25000.0, rows).round(0),
        }
    )


def _skewed(n: int) -> np.ndarray:
    w = 1 / np.arange(1, n + 1)
    return w / w.sum()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / "policy.yml"
        policy_file.write_text(POLICY)
        plan = build_plan([load_policy(policy_file)])
        d = dialect.get("duckdb")
        engine = DuckDBEngine(str(Path(tmp) / "bench.duckdb"))
        raw = generate(args.rows)
        engine.conn.execute("CREATE SCHEMA raw")
        engine.conn.register("raw_df", raw)
        engine.conn.execute("CREATE TABLE raw.patients AS SELECT * FROM raw_df")
        engine.conn.unregister("raw_df")
        create(plan, d, engine)

        start = time.perf_counter()
        (ours,) = measure(plan, d, engine, with_population=False)
        t_ours = time.perf_counter() - start
        view = engine.conn.execute("SELECT * FROM anon.patients").df()
        engine.close()

    start = time.perf_counter()
    theirs = {
        "k": pc.k_anonymity(view, QI),
        "l diagnosis": pc.l_diversity(view, QI, ["diagnosis"]),
        "entropy l diagnosis": pc.entropy_l_diversity(view, QI, ["diagnosis"]),
        "t diagnosis": pc.t_closeness(view, QI, ["diagnosis"]),
        "l income": pc.l_diversity(view, QI, ["income"]),
        "entropy l income": pc.entropy_l_diversity(view, QI, ["income"]),
        "t income": pc.t_closeness(view, QI, ["income"]),
    }
    t_theirs = time.perf_counter() - start

    by = {s.column: s for s in ours.sensitive}
    mine = {
        "k": ours.k,
        "l diagnosis": by["diagnosis"].l_distinct,
        "entropy l diagnosis": int(by["diagnosis"].l_entropy),
        "t diagnosis": by["diagnosis"].t,
        "l income": by["income"].l_distinct,
        "entropy l income": int(by["income"].l_entropy),
        "t income": by["income"].t,
    }
    table = Table(title=f"risk: {args.rows:,} rows, {ours.classes:,} classes")
    for col in ("measure", "sqlanon on DuckDB", "pycanon", "equal"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    all_equal = True
    for name, value in mine.items():
        other = theirs[name]
        same = abs(float(value) - float(other)) < 1e-9
        all_equal &= same
        table.add_row(name, f"{value:.6g}", f"{float(other):.6g}", "yes" if same else "NO")
    table.add_row("wall time", f"{t_ours:.2f} s", f"{t_theirs:.2f} s", "", end_section=True)
    table.add_row("ratio (pycanon / sqlanon)", f"{t_theirs / t_ours:.1f} ×", "", "")
    console.print(table)
    if not all_equal:
        raise SystemExit("the two computations disagree: the times do not count")


if __name__ == "__main__":
    main()
