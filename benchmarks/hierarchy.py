"""hierarchy: the compiled `generalize` view against a hand-written LEFT JOIN to the same
hierarchy, on DuckDB and PostgreSQL, in one run (issue 17). For hierarchies of 100, 250, 1,000,
10,000 and 100,000 values (100 values per target, so 1,000 targets at 100,000):

- view: as deployed — the pairs written into the view up to 250 values, beyond that a
  lookup table the view's file fills (sqlanon/sql/lookups.py);
- LEFT JOIN by hand: `raw.t LEFT JOIN raw.h ON h.value = t.code`, the floor;
- CASE (before): one `WHEN code IN (...) THEN target` branch per target, the lowering before
  issue 17 (up to 1,000 values: beyond, it runs for minutes).

    python benchmarks/hierarchy.py [--rows 1000000] [--repeat 3]

Each contender's rows are checked equal to the view's (EXCEPT ALL both ways) before timing.
Target (issue 17): the view ≤ 1.5× the hand-written join on both engines.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from buckets import best_of  # the same timing as the bucket benchmark (a sibling script)

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.views import view_statements
from sqlanon.testing.postgres_server import private_server
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.postgres import PostgresEngine

SIZES = (100, 250, 1000, 10_000, 100_000)
CASE_UP_TO = 1000
POLICY = """
sqlanon: 1
name: hierarchy
tables:
  t:
    source: raw.t
    target: anon.t{n}
    columns:
      code: keep
      g: {{column: code, transform: generalize, hierarchy: h{n}.csv, level: 1}}
"""


def pairs(n: int) -> list[tuple[str, str]]:
    return [(f"z{i}", f"g{i // 100}") for i in range(n)]


def case_of(n: int) -> str:
    groups: dict[str, list[str]] = {}
    for v, t in pairs(n):
        groups.setdefault(t, []).append(f"'{v}'")
    whens = " ".join(f"WHEN code IN ({', '.join(vs)}) THEN '{t}'" for t, vs in groups.items())
    return f"CASE WHEN code IS NULL THEN NULL {whens} ELSE '*' END"


def measure(engine, name: str, repeat: int, tmp: Path, rows: int) -> list[tuple[int, str, float]]:  # type: ignore[no-untyped-def]
    d = dialect.get(name)
    out = []
    for n in SIZES:
        load(engine, name, n, rows)
        (tmp / f"h{n}.csv").write_text("".join(f"{v};{t}\n" for v, t in pairs(n)))
        path = tmp / f"policy{n}.yml"
        path.write_text(POLICY.format(n=n))
        (view,) = build_plan([load_policy(path)]).views
        for s in view_statements(view, d):  # deployed as compiled, lookup table included
            engine.execute(s.text)
        engine.execute("CREATE TABLE raw.h (value VARCHAR, target VARCHAR)")
        engine.load_rows(("raw", "h"), pairs(n))
        if name == "postgres":
            engine.execute("ANALYZE raw.h")
        queries = {
            "view": f"SELECT code, g FROM anon.t{n}",
            "LEFT JOIN by hand": "SELECT t.code, CASE WHEN t.code IS NULL THEN NULL "
            "ELSE COALESCE(h.target, '*') END AS g "
            "FROM raw.t AS t LEFT JOIN raw.h AS h ON h.value = t.code",
        }
        if n <= CASE_UP_TO:
            queries["CASE (before)"] = f"SELECT code, {case_of(n)} AS g FROM raw.t"
        view_sql = queries["view"]
        for label, sql in queries.items():
            diff = (
                engine.query(f"SELECT count(*) FROM (({view_sql}) EXCEPT ALL ({sql})) AS a")[0][0]
                + engine.query(f"SELECT count(*) FROM (({sql}) EXCEPT ALL ({view_sql})) AS a")[0][0]
            )
            assert diff == 0, (name, n, label, diff)
        for label, sql in queries.items():
            t = best_of(
                repeat, lambda sql=sql: engine.query(f"SELECT sum(length(g)) FROM ({sql}) AS q")
            )
            out.append((n, label, t))
    return out


def load(engine, name: str, n: int, rows: int) -> None:  # type: ignore[no-untyped-def]
    """rows codes over 1.1 × n values (a tenth unknown to the hierarchy), 1 % NULL."""
    for size in SIZES:  # the views of earlier sizes read raw.t
        engine.execute(f"DROP VIEW IF EXISTS anon.t{size}")
    engine.execute("DROP TABLE IF EXISTS raw.t")
    engine.execute("DROP TABLE IF EXISTS raw.h")
    engine.execute("CREATE SCHEMA IF NOT EXISTS raw")
    spread = n * 11 // 10
    if name == "postgres":
        engine.execute(
            "CREATE TABLE raw.t AS SELECT CASE WHEN i % 100 = 0 THEN NULL "
            f"ELSE 'z' || ((hashint4(i)::bigint & 2147483647) % {spread}) END AS code "
            f"FROM generate_series(1, {rows}) AS g(i)"
        )
        engine.execute("ANALYZE raw.t")
    else:
        engine.execute(
            "CREATE TABLE raw.t AS SELECT CASE WHEN i % 100 = 0 THEN NULL "
            f"ELSE 'z' || (hash(i) % {spread}) END AS code FROM range({rows}) AS g(i)"
        )


def report(title: str, rows: list[tuple[int, str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'values':>7}  {'contender':18} {'seconds':>8} {'view / it':>10}")
    views = {n: t for n, label, t in rows if label == "view"}
    for n, label, t in rows:
        print(f"{n:7}  {label:18} {t:8.3f} {views[n] / t:9.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        duck = DuckDBEngine()
        duck_rows = measure(duck, "duckdb", args.repeat, Path(tmp), args.rows)
        duck.close()
        with private_server() as dsn:
            pg = PostgresEngine(dsn)
            pg_rows = measure(pg, "postgres", args.repeat, Path(tmp), args.rows)
            pg.close()
    report(f"DuckDB, {args.rows:,} rows, best of {args.repeat}", duck_rows)
    report(f"PostgreSQL, {args.rows:,} rows, best of {args.repeat}", pg_rows)


if __name__ == "__main__":
    main()
