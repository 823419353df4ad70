"""view_overhead: the compiled view vs hand-written DuckDB SQL doing the same transforms vs
pandas + hashlib and polars + hashlib, on generated rows, in one run; with --postgres, the view
on PostgreSQL vs hand-written SQL whose pseudonyms are pgcrypto's hmac(). Prints ratios.

    pip install polars
    python benchmarks/view_overhead.py [--rows 10000000] [--pandas-rows 2000000] [--postgres]

Every contender's output is checked equal to the compiled view's before timing counts.
pandas and polars run on a prefix of the rows (their HMACs are Python calls per value); their
time is compared per row.
Targets (issue 2): view ≤ 1.2 × hand-written SQL; ≥ 5 × faster than pandas + hashlib.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import tempfile
import time
from pathlib import Path

import duckdb

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.views import key_table_statements
from sqlanon.warehouse.apply import create
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import store

KEY = b"benchmark key, 32 bytes long...!"
POLICY = """
sqlanon: 1
name: bench
keys: {table: privacy.sqlanon_keys}
tables:
  people:
    source: raw.people
    target: anon.people
    columns:
      customer_id: {transform: pseudonymize, key: k, length: 16, type: integer}
      email_id: {column: email, transform: pseudonymize, key: k}
      email: {transform: mask_email}
      phone: {transform: mask, keep_last: 4}
      birth_year: {column: birth_date, transform: truncate_date, to: year}
      income: {transform: bucket, width: 10000, min: 0, max: 200000}
      zip: {transform: prefix, length: 3}
"""

# What a DuckDB expert would write by hand for the same policy.
HAND_WRITTEN = """
CREATE OR REPLACE TEMP TABLE out_hand AS
WITH k AS (SELECT inner_pad, outer_pad FROM privacy.sqlanon_keys WHERE name = 'k' AND version = 1)
SELECT
  left(sha256(k.outer_pad || unhex(sha256(
    k.inner_pad || encode('pseudonym|' || p.customer_id::VARCHAR)))), 16) AS customer_id,
  sha256(k.outer_pad || unhex(sha256(k.inner_pad || encode('pseudonym|' || p.email))))
    AS email_id,
  CASE WHEN NOT contains(p.email, '@') THEN repeat('*', length(p.email))
       WHEN length(p.email) - length(split_part(p.email, '@', -1)) - 1 <= 1
         THEN repeat('*', length(p.email) - length(split_part(p.email, '@', -1)) - 1)
              || '@' || split_part(p.email, '@', -1)
       ELSE left(p.email, 1)
            || repeat('*', length(p.email) - length(split_part(p.email, '@', -1)) - 2)
            || '@' || split_part(p.email, '@', -1) END AS email,
  CASE WHEN length(p.phone) <= 4 THEN repeat('*', length(p.phone))
       ELSE repeat('*', length(p.phone) - 4) || right(p.phone, 4) END AS phone,
  date_trunc('year', p.birth_date)::DATE AS birth_year,
  least(greatest(floor(p.income / 10000) * 10000, 0), 200000)::INTEGER AS income,
  left(p.zip, 3) AS zip
FROM raw.people AS p, k
"""

GENERATE = """
CREATE TABLE raw.people AS
SELECT range AS customer_id,
       'user' || range || '@example' || (range % 7) || '.com' AS email,
       '+1-555-' || lpad((range % 10000)::VARCHAR, 4, '0') AS phone,
       DATE '1950-01-01' + (range % 20000)::INTEGER AS birth_date,
       ((range * 7919) % 250000)::INTEGER AS income,
       lpad(((range * 31) % 100000)::VARCHAR, 5, '0') AS zip
FROM range(?)
"""


def best_of(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def pandas_transform(df):  # type: ignore[no-untyped-def]
    """The same policy in pandas with hashlib's HMAC: vectorized where pandas can be."""
    import numpy as np
    import pandas as pd

    def hm(values, n=64):  # type: ignore[no-untyped-def]
        return [
            hmac.new(KEY, f"pseudonym|{v}".encode(), hashlib.sha256).hexdigest()[:n] for v in values
        ]

    out = pd.DataFrame()
    out["customer_id"] = hm(df["customer_id"].astype(str), 16)
    out["email_id"] = hm(df["email"])
    parts = df["email"].str.rsplit("@", n=1, expand=True)
    local, domain = parts[0], parts[1]
    out["email"] = (
        np.where(
            local.str.len() <= 1,
            local.str.len().map(lambda n: "*" * n),
            local.str[:1] + local.str.len().map(lambda n: "*" * (n - 1)),
        )
        + "@"
        + domain
    )
    out["phone"] = df["phone"].str.len().map(lambda n: "*" * (n - 4)) + df["phone"].str[-4:]
    out["birth_year"] = pd.to_datetime(df["birth_date"]).dt.to_period("Y").dt.start_time.dt.date
    out["income"] = (df["income"].clip(0, 200000) // 10000 * 10000).astype("int64")
    out["zip"] = df["zip"].str[:3]
    return out


def polars_transform(df):  # type: ignore[no-untyped-def]
    """The same policy in polars: its string expressions, with hashlib's HMAC per value (polars
    has no keyed hash)."""
    import polars as pl

    def hm(n: int = 64):  # type: ignore[no-untyped-def]
        return lambda v: hmac.new(KEY, f"pseudonym|{v}".encode(), hashlib.sha256).hexdigest()[:n]

    local = pl.col("email").str.extract(r"^(.*)@[^@]*$")
    domain = pl.col("email").str.extract(r"@([^@]*)$")
    n = local.str.len_chars()
    stars = pl.lit("*").repeat_by(n - 1).list.join("")
    return df.select(
        pl.col("customer_id").cast(pl.Utf8).map_elements(hm(16), return_dtype=pl.Utf8),
        pl.col("email").map_elements(hm(), return_dtype=pl.Utf8).alias("email_id"),
        pl.when(n <= 1)
        .then(pl.lit("*").repeat_by(n).list.join(""))
        .otherwise(local.str.slice(0, 1) + stars)
        .add(pl.lit("@") + domain)
        .alias("email"),
        (
            pl.lit("*").repeat_by(pl.col("phone").str.len_chars() - 4).list.join("")
            + pl.col("phone").str.slice(-4)
        ).alias("phone"),
        pl.col("birth_date").dt.truncate("1y").alias("birth_year"),
        ((pl.col("income").clip(0, 200000) // 10000) * 10000).cast(pl.Int32).alias("income"),
        pl.col("zip").str.slice(0, 3),
    )


# PostgreSQL (--postgres): the same rows, the same view, and a hand-written query whose
# pseudonyms are pgcrypto's hmac() of the raw key
PG_GENERATE = """
CREATE TABLE raw.people AS
SELECT i AS customer_id,
       'user' || i || '@example' || (i % 7) || '.com' AS email,
       '+1-555-' || lpad((i % 10000)::text, 4, '0') AS phone,
       DATE '1950-01-01' + (i % 20000)::integer AS birth_date,
       ((i * 7919) % 250000)::integer AS income,
       lpad(((i * 31) % 100000)::text, 5, '0') AS zip
FROM generate_series(0::bigint, {rows} - 1) AS i
"""
PG_PGCRYPTO = """
CREATE TEMP TABLE out_pgcrypto AS
SELECT
  left(encode(hmac(convert_to('pseudonym|' || p.customer_id::text, 'UTF8'), {key},
    'sha256'), 'hex'), 16) AS customer_id,
  encode(hmac(convert_to('pseudonym|' || p.email, 'UTF8'), {key}, 'sha256'), 'hex')
    AS email_id,
  CASE WHEN strpos(p.email, '@') = 0 THEN repeat('*', length(p.email))
       WHEN length(p.email) - length(split_part(p.email, '@', -1)) - 1 <= 1
         THEN repeat('*', length(p.email) - length(split_part(p.email, '@', -1)) - 1)
              || '@' || split_part(p.email, '@', -1)
       ELSE left(p.email, 1)
            || repeat('*', length(p.email) - length(split_part(p.email, '@', -1)) - 2)
            || '@' || split_part(p.email, '@', -1) END AS email,
  CASE WHEN length(p.phone) <= 4 THEN repeat('*', length(p.phone))
       ELSE repeat('*', length(p.phone) - 4) || right(p.phone, 4) END AS phone,
  date_trunc('year', p.birth_date)::date AS birth_year,
  least(greatest(p.income / 10000 * 10000, 0), 200000) AS income,
  left(p.zip, 3) AS zip
FROM raw.people AS p
"""


def postgres(rows: int, repeat: int, tmp: Path) -> list[tuple[str, float]]:
    """(contender, seconds) on a private PostgreSQL server, outputs checked equal first."""
    from sqlanon.testing.postgres_server import private_server
    from sqlanon.warehouse.postgres import PostgresEngine

    d = dialect.get("postgres")
    with private_server() as dsn:
        engine = PostgresEngine(dsn)
        engine.execute("CREATE EXTENSION pgcrypto")
        engine.execute("CREATE SCHEMA raw")
        engine.execute(PG_GENERATE.format(rows=int(rows)))
        engine.execute("ANALYZE raw.people")
        for s in key_table_statements(("privacy", "sqlanon_keys"), d):
            engine.execute(s.text)
        store(engine, d, ("privacy", "sqlanon_keys"), "k", 1, KEY)
        policy = tmp / "pg.yml"
        policy.write_text(POLICY)
        create(build_plan([load_policy(policy)]), d, engine)
        view = "CREATE TEMP TABLE out_view AS SELECT * FROM anon.people"
        bare = "CREATE TEMP TABLE out_bare AS SELECT * FROM raw.people"
        key = f"decode('{KEY.hex()}', 'hex')"
        runs = {"view": view, "pgcrypto": PG_PGCRYPTO.format(key=key), "bare": bare}
        times: dict[str, float] = {}
        for name, sql in runs.items():
            table = sql.split()[3]

            def run(sql: str = sql, table: str = table) -> None:
                engine.execute(f"DROP TABLE IF EXISTS {table}")
                engine.execute(sql)

            times[name] = best_of(repeat, run)
        diff = engine.query(
            "SELECT COUNT(*) FROM (SELECT * FROM out_view EXCEPT ALL SELECT * FROM out_pgcrypto) x"
        )[0][0]
        assert diff == 0, f"the pgcrypto query differs from the view on {diff} rows"
        engine.close()
    return [
        ("compiled sqlanon view", times["view"]),
        ("hand-written, pgcrypto hmac()", times["pgcrypto"]),
        ("copy without transforms", times["bare"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--pandas-rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgres", action="store_true", help="also on PostgreSQL, with pgcrypto")
    ap.add_argument("--postgres-rows", type=int, default=1_000_000)
    args = ap.parse_args()

    d = dialect.get("duckdb")
    with tempfile.TemporaryDirectory() as tmp:
        engine = DuckDBEngine(str(Path(tmp) / "bench.duckdb"))
        con = engine.conn
        con.execute("SET threads = 2")
        con.execute("CREATE SCHEMA raw")
        con.execute(GENERATE, [args.rows])
        for s in key_table_statements(("privacy", "sqlanon_keys"), d):
            engine.execute(s.text)
        store(engine, d, ("privacy", "sqlanon_keys"), "k", 1, KEY)
        policy = Path(tmp) / "policy.yml"
        policy.write_text(POLICY)
        create(build_plan([load_policy(policy)]), d, engine)

        view = "CREATE OR REPLACE TEMP TABLE out_view AS SELECT * FROM anon.people"
        con.execute(view)
        con.execute(HAND_WRITTEN)
        diff = con.execute(
            "SELECT COUNT(*) FROM (SELECT * FROM out_view EXCEPT ALL SELECT * FROM out_hand)"
        ).fetchall()[0][0]
        assert diff == 0, f"hand-written SQL differs from the view on {diff} rows"

        t_view = best_of(args.repeat, lambda: con.execute(view))
        t_hand = best_of(args.repeat, lambda: con.execute(HAND_WRITTEN))
        bare = (
            "CREATE OR REPLACE TEMP TABLE out_bare AS SELECT customer_id, email, phone, "
            "birth_date, income, zip FROM raw.people"
        )
        t_bare = best_of(args.repeat, lambda: con.execute(bare))

        n_pd = min(args.pandas_rows, args.rows)
        df = con.execute(f"SELECT * FROM raw.people ORDER BY customer_id LIMIT {n_pd}").df()
        t_pd = best_of(1, lambda: pandas_transform(df))
        # pandas computes the same rows: compare the first 2,000 with the view's
        got = pandas_transform(df.head(2000))
        con.register("pandas_out", got)
        diff = con.execute(
            "SELECT COUNT(*) FROM (SELECT customer_id, email_id, email, phone, birth_year, "
            "income, zip FROM pandas_out EXCEPT ALL SELECT * FROM out_view)"
        ).fetchall()[0][0]
        assert diff == 0, f"pandas differs from the view on {diff} rows"
        import polars as pl

        frame = pl.from_pandas(df)
        t_pl = best_of(1, lambda: polars_transform(frame))
        con.register("polars_out", polars_transform(frame.head(2000)))
        diff = con.execute(
            "SELECT COUNT(*) FROM (SELECT customer_id, email_id, email, phone, birth_year, "
            "income, zip FROM polars_out EXCEPT ALL SELECT * FROM out_view)"
        ).fetchall()[0][0]
        assert diff == 0, f"polars differs from the view on {diff} rows"
        engine.close()
        pg = postgres(args.postgres_rows, args.repeat, Path(tmp)) if args.postgres else []

    per_row_view = t_view / args.rows
    per_row_pd = t_pd / n_pd
    rows = [
        ("compiled sqlanon view", t_view, t_view / t_hand, "≤ 1.2× hand-written"),
        ("hand-written DuckDB SQL", t_hand, 1.0, ""),
        ("copy without transforms", t_bare, t_bare / t_hand, "(floor: I/O only)"),
        (
            f"pandas + hashlib ({n_pd:,} rows)",
            t_pd,
            per_row_pd / (t_hand / args.rows),
            f"view is {per_row_pd / per_row_view:.1f}× faster (target ≥ 5×)",
        ),
        (
            f"polars + hashlib ({n_pd:,} rows)",
            t_pl,
            t_pl / n_pd / (t_hand / args.rows),
            f"view is {t_pl / n_pd / per_row_view:.1f}× faster",
        ),
    ]
    print(
        f"\nview_overhead: {args.rows:,} rows, 7 columns, DuckDB {duckdb.__version__}, "
        f"2 threads, best of {args.repeat}"
    )
    print(f"{'contender':34} {'seconds':>9} {'per row vs hand':>16}  note")
    for name, secs, ratio, note in rows:
        print(f"{name:34} {secs:9.3f} {ratio:15.2f}×  {note}")
    print(f"\nview / hand-written = {t_view / t_hand:.2f}  (target ≤ 1.2)")
    print(f"pandas / view per row = {per_row_pd / per_row_view:.1f}  (target ≥ 5)")
    if pg:
        print(f"\nPostgreSQL, {args.postgres_rows:,} rows, best of {args.repeat}")
        pgcrypto = dict(pg)["hand-written, pgcrypto hmac()"]
        for name, secs in pg:
            print(f"{name:34} {secs:9.3f} {secs / pgcrypto:15.2f}×")


if __name__ == "__main__":
    main()
