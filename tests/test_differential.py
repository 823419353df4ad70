"""Same meaning on every engine, found by generated values rather than hand-picked ones
(issue 14). Hypothesis draws values across each logical type's whole range — floats with
subnormals, 3-digit exponents and non-finite values, 38-digit decimals, timestamps from year 1
to the last microsecond of 9999, Unicode with combining marks and astral planes, NULL — runs
them through each transform on each engine, and compares every output with the Python
reference of the documented semantics (tests/reference.py) and its type with the type the plan
documents.

A failure lists the failing values one by one, each a minimal vector already (every row is
checked on its own), shortest first: add it to dialects/conformance/.

CI draws a fixed batch per transform × engine (SQLANON_DIFF_BATCHES, default 1 batch of
BATCH values, derandomized); a larger run:

    SQLANON_DIFF_BATCHES=50 python -m pytest tests/test_differential.py -n 2
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from decimal import Decimal
from typing import Any

import pytest
import reference
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sqlanon.review.conformance import Case, canonical_value, run_case
from sqlanon.sql import dialect
from sqlanon.warehouse import ENGINES

BATCH = 60
BATCHES = int(os.environ.get("SQLANON_DIFF_BATCHES", "1"))
KEY = bytes(range(32))
UTC = dt.timezone.utc
TABLES = itertools.count()  # one source table per batch, on engines shared by the worker

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
)
DECIMALS = st.decimals(
    min_value=Decimal("-99999999999999999999999999999.999999999"),
    max_value=Decimal("99999999999999999999999999999.999999999"),
    places=9,
    allow_nan=False,
    allow_infinity=False,
)
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["\u0301", "😀", "\t"]),
    max_size=12,
)
DATES = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
LAST_MICROSECOND = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
TIMESTAMPS = st.datetimes(dt.datetime(1, 1, 1), LAST_MICROSECOND) | st.builds(
    lambda d: dt.datetime(d.year, d.month, d.day, 23, 59, 59, 999999), DATES
)
# fakesnow runs Snowflake's SQL on DuckDB with nanosecond timestamps: 1677-09-22 to 2262-04-11
# (an emulator limit, docs/dialects.md)
EMULATED_RANGE = (dt.datetime(1678, 1, 1), dt.datetime(2262, 1, 1))

STRATEGIES: dict[str, Any] = {
    "text": TEXT,
    "integer": st.integers(-(2**63), 2**63 - 1),
    "decimal": DECIMALS,
    "float": FLOATS,
    "boolean": st.booleans(),
    "date": DATES,
    "timestamp": TIMESTAMPS,
    "timestamptz": TIMESTAMPS.map(lambda t: t.replace(tzinfo=UTC)),
}

CASES: list[tuple[str, dict[str, Any], str]] = [
    *[("pseudonymize", {"key": "conformance"}, t) for t in STRATEGIES],
    *[("keep", {}, t) for t in ("integer", "decimal", "float", "date", "timestamp", "timestamptz")],
    *[("prefix", {"length": 12}, t) for t in ("text", "decimal", "float", "timestamptz")],
    ("mask", {"keep_first": 2, "keep_last": 3}, "float"),
    ("mask", {"keep_first": 1, "keep_last": 1}, "text"),
    ("bucket", {"width": 7, "min": -20, "max": 50}, "integer"),
    ("bucket", {"width": 1000}, "decimal"),
    ("bucket", {"width": 0.25, "min": -1.5, "max": 1.5}, "decimal"),
    ("bucket", {"width": 10}, "float"),
    ("bucket", {"edges": [0, 10, 100], "output": "label"}, "float"),
    # ladders searched by halves (more than LADDER_STEPS edges) and the one-MOD uniform form
    ("bucket", {"edges": [i * i - 400 for i in range(40)]}, "integer"),
    ("bucket", {"edges": [i * i - 400 for i in range(40)], "output": "label"}, "decimal"),
    ("bucket", {"width": 0.1, "min": -5, "max": 5}, "float"),
    ("bucket", {"width": 3, "min": -600, "max": 600}, "integer"),
    ("truncate_date", {"to": "day"}, "timestamp"),
    ("truncate_date", {"to": "hour"}, "timestamptz"),
    ("truncate_date", {"to": "week"}, "date"),
    ("truncate_date", {"to": "quarter"}, "timestamptz"),
    ("age", {"as_of": dt.date(2024, 2, 29)}, "date"),
    ("age", {"as_of": dt.date(2023, 3, 1)}, "timestamp"),
    ("age", {"as_of": dt.date(2023, 3, 1)}, "timestamptz"),
    ("age", {"as_of": dt.date(2024, 2, 29), "width": 0.5, "max": 90}, "date"),
]

PYTHON_TYPES = {
    "text": str,
    "integer": int,
    "decimal": Decimal,
    "float": float,
    "boolean": bool,
    "date": dt.date,
    "timestamp": dt.datetime,
    "timestamptz": dt.datetime,
}


def as_text(x: Any, type_: str) -> str | None:
    """How a value is written into the source table (cast there to the column's type)."""
    if x is None:
        return None
    if type_ == "float":
        return repr(x)
    if type_ == "boolean":
        return "true" if x else "false"
    if type_ in ("date", "timestamp", "timestamptz"):
        return x.isoformat()
    return str(x)


def expected(transform: str, params: dict[str, Any], type_: str, x: Any) -> Any:
    p = {k: v for k, v in params.items() if k != "key"}
    if transform == "pseudonymize":
        return reference.pseudonymize(x, type_, KEY, **p)
    return reference.TRANSFORMS[transform](x, type_, **p)


def usable(engine: str, type_: str, x: Any) -> bool:
    if engine == "snowflake" and type_ in ("timestamp", "timestamptz") and x is not None:
        naive = x.replace(tzinfo=None)
        return EMULATED_RANGE[0] <= naive < EMULATED_RANGE[1]
    return True


def type_ok(value: Any, output_type: str | None) -> bool:
    if value is None or output_type is None:
        return True
    want = PYTHON_TYPES[output_type]
    if output_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if output_type == "date":
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if output_type == "timestamp":
        return isinstance(value, dt.datetime) and value.tzinfo is None
    if output_type == "timestamptz":
        return isinstance(value, dt.datetime) and value.tzinfo is not None
    return isinstance(value, want)


def check(engine_name: str, live, transform, params, type_, values, run: list[int]) -> None:  # type: ignore[no-untyped-def]
    engine = live.get(engine_name)
    d = dialect.get(engine_name)
    values = [v for v in values if usable(engine_name, type_, v)] + [None]
    want = [expected(transform, params, type_, v) for v in values]
    case = Case(
        "differential",
        next(TABLES),
        transform,
        params,
        type_,
        None,
        tuple((as_text(v, type_), w) for v, w in zip(values, want, strict=True)),
        KEY if transform == "pseudonymize" else None,
    )
    run.append(1)
    outcome = run_case(case, d, engine, suffix="_diff")
    if outcome.unsupported:
        return  # the dialect refuses the case at compile time, and says why (docs)
    wrong = [
        (as_text(v, type_), canonical_value(w), got)
        for v, w, got in zip(values, want, outcome.actual, strict=True)
        if canonical_value(w) != got
    ]
    retyped = [
        (as_text(v, type_), type(raw).__name__)
        for v, raw in zip(values, outcome.raw, strict=False)
        if not type_ok(raw, outcome.output_type)
    ]
    wrong.sort(key=lambda f: len(f[0] or ""))
    assert not wrong, f"{engine_name}: {transform} {params} of {type_}: (input, expected, got) " + (
        "; ".join(map(repr, wrong[:8]))
    )
    assert not retyped, (
        f"{engine_name}: {transform} {params} of {type_} is documented {outcome.output_type}, "
        f"the engine returns {retyped[:3]}"
    )


@pytest.mark.parametrize("engine_name", [e for e in ENGINES if e in dialect.available()])
@pytest.mark.parametrize(
    "transform,params,type_",
    CASES,
    ids=[f"{t}-{'-'.join(f'{k}={v}' for k, v in p.items())}-{ty}" for t, p, ty in CASES],
)
def test_engines_match_the_documented_semantics(engine_name, transform, params, type_, live):
    run: list[int] = []
    for values in batches(type_):
        check(engine_name, live, transform, params, type_, values, run)


def batches(type_: str) -> list[list[Any]]:
    """BATCHES × BATCH values hypothesis draws for the type, the same on every run: its
    examples, one value each, boundaries and all, pooled into batches so that each batch is
    one table on the engine (a value per example would be a table per value)."""
    pool: list[Any] = []

    @settings(
        max_examples=BATCH * BATCHES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # every row is checked alone: a failing value is minimal
        suppress_health_check=list(HealthCheck),
    )
    @given(STRATEGIES[type_])
    def draw(value: Any) -> None:
        pool.append(value)

    draw()
    unique = list({repr(v): v for v in pool}.values())
    return [unique[i : i + BATCH] for i in range(0, len(unique), BATCH)]


TODAY_POLICY = """
sqlanon: 1
name: today_NAME
tables:
  t:
    source: today.src_NAME
    target: today_out.v_NAME
    retention: {column: d, max_age_days: 10}
    columns:
      id: {transform: keep, type: integer}
      years: {column: born, transform: age, as_of: today}
"""


@pytest.mark.parametrize("engine_name", [e for e in ENGINES if e in dialect.available()])
def test_today_is_the_utc_date_in_every_session_time_zone(engine_name, live, tmp_path):
    """Before: retention and `age: today` used CURRENT_DATE, the session's date: under
    Pacific/Kiritimati (UTC+14) or Pacific/Pago_Pago (UTC-11) — one of which is on another
    date than UTC at any hour — engines kept different rows."""
    from sqlanon.plan.build import build_plan
    from sqlanon.policy.load import load_policy
    from sqlanon.warehouse.apply import create

    engine = live.get(engine_name)
    d = dialect.get(engine_name)
    today = dt.datetime.now(UTC).date()
    rows = [
        (1, today - dt.timedelta(days=10), today.replace(year=today.year - 30)),
        (2, today - dt.timedelta(days=11), today.replace(year=today.year - 30)),
        (3, today, (today + dt.timedelta(days=1)).replace(year=today.year - 30)),
    ]
    engine.execute(d.statement("create_schema", d.relation(("today",))).text)
    source = ("today", f"src_{engine_name}")
    engine.execute(
        d.statement(
            "create_table",
            d.relation(source),
            [d.ident(c) for c in ("id", "d", "born")],
            column_types=("integer", "date", "date"),
        ).text
    )
    engine.load_rows(source, rows)
    path = tmp_path / "today.yml"
    path.write_text(TODAY_POLICY.replace("NAME", engine_name))
    plan = build_plan([load_policy(path)])
    create(plan, d, engine)
    seen = set()
    try:
        for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
            engine.set_time_zone(tz)
            got = engine.query(d.statement("select_all", d.relation(plan.views[0].target)).text)
            seen.add(tuple(sorted((int(i), int(y)) for i, y in got)))
    finally:
        engine.set_time_zone("UTC")
    if dt.datetime.now(UTC).date() != today:
        pytest.skip("the UTC date changed during the test")
    assert seen == {((1, 30), (3, 29))}, seen
