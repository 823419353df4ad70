"""Deterministic, realistic-looking retail data for the demo, the examples and the tests.

Same seed, same rows, on every machine: the random module's Mersenne Twister is specified
and stable across Python versions for `random()`, `randrange()` and `choice()`.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

FIRST = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Eve",
    "Farah",
    "Gus",
    "Hana",
    "Ian",
    "Jürgen",
    "Kofi",
    "Lena",
    "Maya",
    "Nils",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Vik",
    "Wen",
    "Yara",
    "Zoë",
]
LAST = [
    "Abbott",
    "Baker",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fernández",
    "García",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "López",
    "Müller",
    "Nakamura",
    "O'Brien",
    "Patel",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Vogel",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]
DOMAINS = ["example.com", "mail.example.org", "post.example.net", "example.co.uk"]
ZIP3 = ["021", "100", "303", "606", "731", "787", "941", "981"]
COUNTRIES = ["US"] * 8 + ["CA", "GB"]
OCCUPATIONS = [
    "Tech-support",
    "Craft-repair",
    "Other-service",
    "Sales",
    "Exec-managerial",
    "Prof-specialty",
    "Handlers-cleaners",
    "Machine-op-inspct",
    "Adm-clerical",
    "Farming-fishing",
    "Transport-moving",
    "Protective-serv",
    "Astronaut",
]
STATUSES = ["delivered"] * 6 + ["shipped", "returned", "cancelled"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0)",
    "Mozilla/5.0 (Macintosh)",
    "Mozilla/5.0 (Linux; Android 14)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
]
EPOCH = dt.date(2026, 1, 1)


@dataclass(frozen=True)
class Table:
    name: str  # raw.<name>
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type)
    rows: list[tuple[object, ...]]


def _customers(rng: random.Random, n: int) -> Iterator[tuple[object, ...]]:
    for cid in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}".lower().replace("'", "")
        birth = EPOCH - dt.timedelta(days=rng.randrange(18 * 365, 85 * 365))
        income = int(min(240_000, max(0, rng.lognormvariate(10.9, 0.55))))
        yield (
            cid,
            f"{first} {last}",
            f"{local}{cid}@{rng.choice(DOMAINS)}",
            f"+1-{rng.randrange(200, 999)}-555-{rng.randrange(0, 10_000):04d}",
            birth,
            rng.choice(["F", "M"]),
            rng.choice(ZIP3) + f"{rng.randrange(0, 100):02d}",
            rng.choice(COUNTRIES),
            rng.choice(OCCUPATIONS),
            income,
            EPOCH - dt.timedelta(days=rng.randrange(0, 6 * 365)),
            rng.choice([None, None, "prefers phone", f"called about order {rng.randrange(10**6)}"]),
        )


def _orders(rng: random.Random, n: int, customers: int) -> Iterator[tuple[object, ...]]:
    for oid in range(1, n + 1):
        at = dt.datetime(2023, 1, 1) + dt.timedelta(seconds=rng.randrange(0, 3 * 365 * 86400))
        yield (
            100_000 + oid,
            rng.randrange(1, customers + 1),
            at,
            Decimal(rng.randrange(199, 50_000)) / 100,
            rng.choice(ZIP3) + f"{rng.randrange(0, 100):02d}",
            "4" + "".join(str(rng.randrange(10)) for _ in range(15)),
            rng.choice(STATUSES),
        )


def _sessions(rng: random.Random, n: int, customers: int) -> Iterator[tuple[object, ...]]:
    for _ in range(n):
        at = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
            seconds=rng.randrange(0, 365 * 86400)
        )
        yield (
            f"{rng.getrandbits(128):032x}",
            rng.randrange(1, customers + 1),
            at,
            f"203.0.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}",
            rng.choice(AGENTS),
            rng.randrange(1, 40),
        )


def generate(customers: int = 2000, seed: int = 20260101) -> list[Table]:
    rng = random.Random(seed)
    return [
        Table(
            "customers",
            (
                ("customer_id", "INTEGER"),
                ("full_name", "VARCHAR"),
                ("email", "VARCHAR"),
                ("phone", "VARCHAR"),
                ("birth_date", "DATE"),
                ("gender", "VARCHAR"),
                ("zip", "VARCHAR"),
                ("country", "VARCHAR"),
                ("occupation", "VARCHAR"),
                ("income", "INTEGER"),
                ("signup_date", "DATE"),
                ("notes", "VARCHAR"),
            ),
            list(_customers(rng, customers)),
        ),
        Table(
            "orders",
            (
                ("order_id", "BIGINT"),
                ("customer_id", "INTEGER"),
                ("ordered_at", "TIMESTAMP"),
                ("amount", "DECIMAL(10,2)"),
                ("ship_zip", "VARCHAR"),
                ("card_number", "VARCHAR"),
                ("status", "VARCHAR"),
            ),
            list(_orders(rng, customers * 4, customers)),
        ),
        Table(
            "web_sessions",
            (
                ("session_id", "VARCHAR"),
                ("customer_id", "INTEGER"),
                ("started_at", "TIMESTAMPTZ"),
                ("ip_address", "VARCHAR"),
                ("user_agent", "VARCHAR"),
                ("pages", "INTEGER"),
            ),
            list(_sessions(rng, customers * 2, customers)),
        ),
    ]


def load_into_duckdb(
    conn,
    tables: list[Table],
    schema: str = "raw",  # type: ignore[no-untyped-def]
    workdir: Path | None = None,
) -> None:
    """Create schema.<table> for each table via CSV files (fast, exact types)."""
    import tempfile

    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for t in tables:
            path = Path(tmp) / f"{t.name}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                for row in t.rows:
                    w.writerow(
                        [
                            "\\N"
                            if v is None
                            else v.isoformat()
                            if isinstance(v, dt.date | dt.datetime)
                            else v
                            for v in row
                        ]
                    )
            cols = ", ".join(f"'{c}': '{ty}'" for c, ty in t.columns)
            conn.execute(
                f'CREATE OR REPLACE TABLE "{schema}"."{t.name}" AS SELECT * FROM '
                f"read_csv('{path.as_posix()}', header=false, nullstr='\\N', "
                f"columns={{{cols}}})"
            )
