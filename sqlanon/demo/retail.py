"""Deterministic, realistic-looking retail data for the demo, the examples and the tests.

Same seed, same rows, on every machine: the random module's Mersenne Twister is specified
and stable across Python versions for `random()`, `randrange()` and `choice()`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

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
    columns: tuple[tuple[str, str], ...]  # (column, logical type)
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
                ("customer_id", "integer"),
                ("full_name", "text"),
                ("email", "text"),
                ("phone", "text"),
                ("birth_date", "date"),
                ("gender", "text"),
                ("zip", "text"),
                ("country", "text"),
                ("occupation", "text"),
                ("income", "integer"),
                ("signup_date", "date"),
                ("notes", "text"),
            ),
            list(_customers(rng, customers)),
        ),
        Table(
            "orders",
            (
                ("order_id", "integer"),
                ("customer_id", "integer"),
                ("ordered_at", "timestamp"),
                ("amount", "decimal"),
                ("ship_zip", "text"),
                ("card_number", "text"),
                ("status", "text"),
            ),
            list(_orders(rng, customers * 4, customers)),
        ),
        Table(
            "web_sessions",
            (
                ("session_id", "text"),
                ("customer_id", "integer"),
                ("started_at", "timestamptz"),
                ("ip_address", "text"),
                ("user_agent", "text"),
                ("pages", "integer"),
            ),
            list(_sessions(rng, customers * 2, customers)),
        ),
    ]


def load(engine, tables: list[Table], schema: str = "raw") -> None:  # type: ignore[no-untyped-def]
    """Create schema.<table> for each table on any engine and fill it."""
    from sqlanon.sql import dialect

    d = dialect.get(engine.dialect)
    engine.execute(d.statement("create_schema", d.ident(schema)).text)
    for t in tables:
        relation = (schema, t.name)
        names = [d.ident(c) for c, _ in t.columns]
        types = tuple(ty for _, ty in t.columns)
        engine.execute(
            d.statement("create_table", d.relation(relation), names, column_types=types).text
        )
        engine.load_rows(relation, t.rows)
