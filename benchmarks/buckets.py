"""buckets: the compiled `bucket` view against hand-written SQL on DuckDB and PostgreSQL, in
one run (issue 17). For 20, 200, 1,000 and 2,000 buckets:

- uniform width (`width`, `min`, `max`): the view vs the arithmetic form written by hand
  (the floor: one MOD per row) and vs the flat CASE ladder compiled before (the "before");
- irregular `edges`: the view (a ladder searched by halves) vs the flat ladder.

    python benchmarks/buckets.py [--rows 10000000] [--pg-rows 1000000] [--repeat 3]

Each contender's result is checked equal to the view's on every row before anything is timed.
Target (issue 17): uniform buckets ≤ 1.2× the arithmetic form on both engines.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.views import view_query
from sqlanon.testing.postgres_server import private_server
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.postgres import PostgresEngine

COUNTS = (20, 200, 1000, 2000)
WIDTH = 50


def policy(kind: str, n: int, edges: list[int]) -> str:
    """One bucket column per view (and x, to compare rows): a second, unread column would
    still cost its planning time in every query of the first."""
    spec = {
        "uniform": f"width: {WIDTH}, min: 0, max: {n * WIDTH}",
        "irregular": f"edges: {edges}",
    }[kind]
    return f"""
sqlanon: 1
name: buckets
tables:
  t:
    source: raw.t
    target: anon.t
    columns:
      x: keep
      b: {{column: x, transform: bucket, {spec}}}
"""


def flat(edges: list[int]) -> str:
    """The ladder lower_buckets wrote before issue 17: every edge tested from the top."""
    whens = " ".join(f"WHEN x >= {e} THEN {e}" for e in reversed(edges[1:]))
    return f"CASE WHEN x IS NULL THEN NULL {whens} ELSE {edges[0]} END"


def arithmetic(n: int) -> str:
    hi = n * WIDTH
    return (
        f"CASE WHEN x IS NULL THEN NULL WHEN x >= {hi} THEN {hi} WHEN x < 0 THEN 0 "
        f"ELSE x - x % {WIDTH} END"
    )


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(engine, name: str, repeat: int, tmp: Path) -> list[tuple[str, int, str, float]]:  # type: ignore[no-untyped-def]
    d = dialect.get(name)
    rng = random.Random(17)
    out = []
    for n in COUNTS:
        hi = n * WIDTH
        edges = sorted(rng.sample(range(0, hi), n + 1))
        compiled = {}
        for kind in ("uniform", "irregular"):
            path = tmp / f"{kind}{n}.yml"
            path.write_text(policy(kind, n, edges))
            (view,) = build_plan([load_policy(path)]).views
            compiled[kind] = view_query(view, d).text
        contenders = {
            "uniform": {
                "view": f"SELECT x, b FROM ({compiled['uniform']}) AS v",
                "arithmetic by hand": f"SELECT x, {arithmetic(n)} AS b FROM raw.t",
                "flat ladder (before)": f"SELECT x, {flat(list(range(0, hi + 1, WIDTH)))} AS b "
                "FROM raw.t",
            },
            "irregular": {
                "view": f"SELECT x, b FROM ({compiled['irregular']}) AS v",
                "flat ladder (before)": f"SELECT x, {flat(edges)} AS b FROM raw.t",
            },
        }
        for kind, queries in contenders.items():
            view = queries["view"]
            for label, sql in queries.items():
                # equal on every row: no (x, bucket) pair in one result and not the other
                diff = (
                    engine.query(f"SELECT count(*) FROM (({view}) EXCEPT ALL ({sql})) AS a")[0][0]
                    + engine.query(f"SELECT count(*) FROM (({sql}) EXCEPT ALL ({view})) AS a")[0][0]
                )
                assert diff == 0, (name, n, kind, label, diff)
            for label, sql in queries.items():
                t = best_of(
                    repeat, lambda sql=sql: engine.query(f"SELECT sum(b) FROM ({sql}) AS q")
                )
                out.append((kind, n, label, t))
    return out


def load(engine, rows: int, pg: bool) -> None:  # type: ignore[no-untyped-def]
    engine.execute("CREATE SCHEMA IF NOT EXISTS raw")
    top = max(COUNTS) * WIDTH
    if pg:
        engine.execute(
            "CREATE TABLE raw.t AS SELECT CASE WHEN i % 100 = 0 THEN NULL "
            f"ELSE (hashtext(i::text)::bigint % {top * 11 // 10}) END AS x "
            f"FROM generate_series(1, {rows}) AS g(i)"
        )
        engine.execute("ANALYZE raw.t")
    else:
        engine.execute(
            "CREATE TABLE raw.t AS SELECT CASE WHEN i % 100 = 0 THEN NULL "
            f"ELSE CAST(hash(i) % {top * 11 // 10} AS BIGINT) - {top // 20} END AS x "
            f"FROM range({rows}) AS g(i)"
        )


def report(title: str, rows: list[tuple[str, int, str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'kind':10} {'buckets':>7}  {'contender':22} {'seconds':>8} {'view / it':>10}")
    views = {(k, n): t for k, n, label, t in rows if label == "view"}
    for kind, n, label, t in rows:
        print(f"{kind:10} {n:7}  {label:22} {t:8.3f} {views[(kind, n)] / t:9.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--pg-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        duck = DuckDBEngine()
        load(duck, args.rows, pg=False)
        duck_rows = measure(duck, "duckdb", args.repeat, Path(tmp))
        duck.close()
        with private_server() as dsn:
            pg = PostgresEngine(dsn)
            load(pg, args.pg_rows, pg=True)
            pg_rows = measure(pg, "postgres", args.repeat, Path(tmp))
            pg.close()
    report(f"DuckDB, {args.rows:,} rows, best of {args.repeat}", duck_rows)
    report(f"PostgreSQL, {args.pg_rows:,} rows, best of {args.repeat}", pg_rows)


if __name__ == "__main__":
    main()
