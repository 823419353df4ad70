"""plan_fence: what the PostgreSQL optimization fence costs (issue 19). A k-anonymous view and a
sampled view compiled as sqlanon writes them (MATERIALIZED CTEs: no analyst filter is pushed
below the view's own filters, so EXPLAIN ANALYZE counts nothing the view leaves out) against
the same views without the fence (plain CTEs, which PostgreSQL inlines and pushes filters
into), on a private server, in one run. Outputs are checked equal first.

    python benchmarks/plan_fence.py [--rows 1000000] [--repeat 3]

The price is the point: without the fence a filter on a quasi-identifier reads and windows
only the matching rows — and that is exactly what the plan then shows the analyst.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.views import key_table_statements, view_statements
from sqlanon.testing.postgres_server import private_server
from sqlanon.warehouse.keys import store
from sqlanon.warehouse.postgres import PostgresEngine

POLICY = """
sqlanon: 1
name: fence
keys: {table: privacy.keys}
tables:
  kanon:
    source: raw.people
    target: anon.kanon
    columns:
      id: {transform: keep, type: integer}
      country: keep
      zip: {transform: prefix, length: 3}
      income: {transform: bucket, width: 10000, min: 0, max: 200000}
    k_anonymity: {quasi_identifiers: [country, zip], k: 5}
  sampled:
    source: raw.people
    target: anon.sampled
    sample: {unit: id, fraction: 0.25, key: sampling}
    columns:
      id: {transform: keep, type: integer}
      country: keep
      zip: {transform: prefix, length: 3}
"""

GENERATE = """
CREATE TABLE raw.people AS
SELECT i AS id,
       (ARRAY['US', 'CA', 'GB', 'MX', 'DE', 'FR'])[1 + i % 6] AS country,
       lpad(((i::bigint * 7919) % 100000)::text, 5, '0') AS zip,
       (i::bigint * 31) % 250000 AS income
FROM generate_series(1, ROWS) AS g(i)
"""


def best_of(n: int, engine: PostgresEngine, sql: str) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        engine.query(sql)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    d = dialect.get("postgres")
    with tempfile.TemporaryDirectory() as tmp, private_server() as dsn:
        path = Path(tmp) / "fence.yml"
        path.write_text(POLICY)
        plan = build_plan([load_policy(path)])
        engine = PostgresEngine(dsn)
        engine.execute("CREATE SCHEMA raw")
        engine.execute("CREATE SCHEMA anon")
        engine.execute(GENERATE.replace("ROWS", str(int(args.rows))))
        engine.execute("ANALYZE raw.people")
        for s in key_table_statements(("privacy", "keys"), d):
            engine.execute(s.text)
        store(engine, d, ("privacy", "keys"), "sampling", 1, b"plan fence sampling key, 32 b!!")
        rows = []
        for view in plan.views:
            (create,) = view_statements(view, d)
            fenced = create.text
            plain = fenced.replace(" AS MATERIALIZED (", " AS (").replace(
                d.relation(view.target).text, d.relation(("anon", view.name + "_plain")).text
            )
            assert plain != fenced
            engine.execute(fenced)
            engine.execute(plain)
            a, b = d.relation(view.target).text, d.relation(("anon", view.name + "_plain")).text
            diff = engine.query(
                f"SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) "
                f"UNION ALL (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a})) AS x"
            )[0][0]
            assert diff == 0, f"{view.name}: the fenced and plain views differ on {diff} rows"
            for label, where in (
                ("all rows", ""),
                ("one country", " WHERE country = 'MX'"),
                ("one class", " WHERE country = 'MX' AND zip = '012'"),
            ):
                t_fenced = best_of(args.repeat, engine, f"SELECT count(*) FROM {a}{where}")
                t_plain = best_of(args.repeat, engine, f"SELECT count(*) FROM {b}{where}")
                rows.append((view.name, label, t_fenced, t_plain))
        engine.close()

    print(f"\nPostgreSQL, {args.rows:,} rows, best of {args.repeat}")
    print(f"{'view':8} {'query':12} {'fenced s':>9} {'plain s':>9} {'fenced / plain':>15}")
    for name, label, fenced_s, plain_s in rows:
        print(f"{name:8} {label:12} {fenced_s:9.3f} {plain_s:9.3f} {fenced_s / plain_s:14.2f}×")


if __name__ == "__main__":
    main()
