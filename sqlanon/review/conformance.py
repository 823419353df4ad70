"""Conformance vectors (dialects/conformance/*.yml) run on a live engine.

Each case becomes a real one-column source table, a one-column policy compiled by the normal
pipeline, and a view read back; outputs are compared as canonical text. The test suite runs
every case on every engine and also compares engines with each other.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import yaml

from sqlanon import resources
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import views as lower
from sqlanon.sql.dialect import Dialect, DialectError
from sqlanon.transforms import REGISTRY
from sqlanon.warehouse.apply import create
from sqlanon.warehouse.keys import store

SCHEMA = "conformance"
OUT_SCHEMA = "conformance_out"
KEY_NAME = "conformance"


@dataclass(frozen=True)
class Case:
    file: str
    index: int
    transform: str
    params: dict[str, Any]
    type: str | None
    session_time_zone: str | None
    vectors: tuple[tuple[Any, Any], ...]
    key: bytes | None
    # engine → why it cannot run this case: an emulator's limit, never a dialect's choice
    # (a dialect's declared gaps are its `unsupported_canonical` feature)
    skip: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.transform}-{self.index}"


@dataclass(frozen=True)
class Outcome:
    case: Case
    actual: tuple[str | None, ...]
    unsupported: str | None = None  # the dialect refuses the case, and says why
    raw: tuple[Any, ...] = ()  # the values as the engine's driver returned them
    output_type: str | None = None  # the logical type the plan gives the column

    @property
    def failures(self) -> list[tuple[Any, Any, Any]]:
        if self.unsupported:
            return []
        return [
            (v[0], v[1], a)
            for v, a in zip(self.case.vectors, self.actual, strict=True)
            if _expected(v[1]) != a
        ]

    @property
    def ok(self) -> bool:
        return not self.failures


def _expected(v: Any) -> str | None:
    return None if v is None else canonical_value(v)


def load_cases(folder: Path | None = None) -> list[Case]:
    folder = folder or resources.dialects_dir() / "conformance"
    cases = []
    for path in sorted(folder.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        key = bytes.fromhex(doc["key"]) if "key" in doc else None
        for i, c in enumerate(doc["cases"]):
            vectors = tuple((v[0], v[1]) for v in c["vectors"])
            cases.append(
                Case(
                    path.name,
                    i,
                    doc["transform"],
                    padded(c.get("params") or {}, c.get("pad", 0)),
                    c.get("type"),
                    c.get("session_time_zone"),
                    vectors,
                    key,
                    tuple(sorted((c.get("skip") or {}).items())),
                )
            )
    return cases


def padded(params: dict[str, Any], pad: int) -> dict[str, Any]:
    """`pad: N` adds N filler values to a case's inline hierarchy, each generalizing to
    `~pad` at every level: the same vectors then run through a larger hierarchy's lowering
    (a join to the pairs written in the view, or to a lookup table: sqlanon/sql/lookups.py)."""
    if not pad:
        return params
    hierarchy = dict(params["hierarchy"])
    first = next(iter(hierarchy.values()))
    depth = len(first) if isinstance(first, list) else 1
    for i in range(pad):
        hierarchy[f"~pad-{i}"] = ["~pad"] * depth
    return {**params, "hierarchy": hierarchy}


def canonical_value(v: Any) -> str | None:
    """How an output value compares across engines: numbers by value, times in ISO 8601."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return repr(v)
        v = Decimal(repr(v))
    if isinstance(v, int | Decimal):
        with localcontext() as ctx:  # normalize() rounds to the context: 28 digits by default
            ctx.prec = 100
            text = format(Decimal(v).normalize(), "f")
        return "0" if text in ("-0", "") else text
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            return v.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat() + "Z"
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def case_policy(case: Case, suffix: str = "") -> str:
    column: dict[str, Any] = {"transform": case.transform, **case.params}
    if case.type:
        column["type"] = case.type
    if case.transform == "pseudonymize":
        column["key"] = KEY_NAME
    doc = {
        "sqlanon": 1,
        "name": f"conformance_{case.transform}_{case.index}",
        "keys": {"table": f"{SCHEMA}.keys"},
        "tables": {
            "vectors": {
                "source": f"{SCHEMA}.{_table(case, suffix)}",
                "target": f"{OUT_SCHEMA}.{_table(case, suffix)}",
                "columns": {"id": {"transform": "keep", "type": "integer"}, "x": column},
            }
        },
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def column_type(case: Case) -> str:
    return case.type or REGISTRY[case.transform].default_type


def _table(case: Case, suffix: str = "") -> str:
    return f"{case.transform}_{case.index}{suffix}"


def run_case(case: Case, d: Dialect, engine: Any, suffix: str = "") -> Outcome:
    """Run one case; `suffix` tells apart repeated runs on one database."""
    skipped = dict(case.skip).get(d.name)
    if skipped:
        return Outcome(case, (), unsupported=skipped)
    table = (SCHEMA, _table(case, suffix))
    src = d.relation(table)
    engine.execute(d.statement("create_schema", d.ident(SCHEMA)).text)
    engine.execute(d.statement("create_vector_table", src, type=column_type(case)).text)
    p = engine.placeholder()
    insert = d.statement(
        "insert_vector", src, [p] * (2 * len(case.vectors)), type=column_type(case)
    ).text
    values = [
        v
        for i, (value, _) in enumerate(case.vectors)
        for v in (i, None if value is None else str(value))
    ]
    engine.execute(insert, values)
    policy = load_policy(Path(f"{case.file}#{case.index}"), text=case_policy(case, suffix))
    plan = build_plan([policy])
    try:
        lower.view_statements(plan.views[0], d)
    except DialectError as exc:
        return Outcome(case, (), unsupported=str(exc))
    if case.key is not None:
        from sqlanon.sql.views import key_table_statements

        for s in key_table_statements((SCHEMA, "keys"), d):
            engine.execute(s.text)
        store(engine, d, (SCHEMA, "keys"), KEY_NAME, 1, case.key, replace=True)
    create(plan, d, engine)
    engine.set_time_zone(case.session_time_zone or "UTC")
    try:
        rows = engine.query(
            d.statement("select_ordered", d.relation(plan.views[0].target), d.ident("id")).text
        )
    finally:
        engine.set_time_zone("UTC")
    actual: tuple[str | None, ...]
    if case.transform == "drop":
        actual = (
            tuple(None for _ in rows)
            if all(len(r) == 1 for r in rows)
            else tuple("present" for _ in rows)
        )
    else:
        actual = tuple(canonical_value(r[1]) for r in rows)
    column = next((c for c in plan.views[0].columns if c.output == "x"), None)
    raw = tuple(r[1] for r in rows) if rows and len(rows[0]) > 1 else ()
    return Outcome(case, actual, raw=raw, output_type=column.output_type if column else None)
