"""The types the views have on each engine are the types the plan documents (issue 14): what
`explain`, manifest.json, OpenLineage and dbt's schema.yml say a column is, read back from
each engine's catalog, for every transform over every type it accepts."""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.views import key_table_statements
from sqlanon.transforms import REGISTRY
from sqlanon.warehouse import ENGINES
from sqlanon.warehouse.apply import create
from sqlanon.warehouse.keys import store

TYPES = ("text", "integer", "decimal", "float", "boolean", "date", "timestamp", "timestamptz")
NOON = dt.datetime(2020, 2, 29, 12)
VALUES = (
    "a@b.c",
    42,
    Decimal("1.5"),
    2.5,
    True,
    NOON.date(),
    NOON,
    NOON.astimezone(dt.timezone.utc),
)
PARAMS = {
    "age": {"as_of": dt.date(2024, 1, 1)},
    "bucket": {"width": 10},
    "constant": {"value": "x"},
    "generalize": {"hierarchy": {"a@b.c": ["x"]}, "level": 1},
    "prefix": {"length": 3},
    "pseudonymize": {"key": "k"},
    "truncate_date": {"to": "day"},
}
LOGICAL = (  # (engine type name pattern, logical type): first match wins
    (
        r"^(bigint|integer|int|int64|smallint|number\(38, ?0\)|decimal\(38, ?0\)|hugeint)$",
        "integer",
    ),
    (r"^(numeric|decimal|number|bignumeric)", "decimal"),
    (r"^(double|float|real|float64|double precision)", "float"),
    (r"^(varchar|text|string|character varying)", "text"),
    (r"^(bool|boolean)$", "boolean"),
    (r"^date$", "date"),
    (r"^(timestamp with time zone|timestamptz|timestamp_tz|timestamp_ltz)$", "timestamptz"),
    (r"^(timestamp without time zone|datetime|timestamp_ntz)$", "timestamp"),
)
# how each engine names an instant and a wall-clock time where the names differ
INSTANT = {"bigquery": "timestamp", "spark": "timestamp"}
WALL = {"duckdb": "timestamp", "snowflake": "timestamp"}


def logical(engine: str, type_name: str) -> str | None:
    name = type_name.lower().strip()
    if name == "timestamp":
        return "timestamptz" if engine in INSTANT else "timestamp"
    for pattern, out in LOGICAL:
        if re.match(pattern, name):
            return out
    return None


def tables() -> dict[str, dict]:  # type: ignore[type-arg]
    """A view per transform (one view of them all is more than ZetaSQL's service answers)."""
    return {
        name: {"source": "vt.src", "target": f"vt_out.{name}", "columns": columns(name)}
        for name in REGISTRY
        if name != "drop"
    }


def columns(name: str) -> dict[str, dict]:  # type: ignore[type-arg]
    out = {}
    t = REGISTRY[name]
    if True:
        for type_ in t.accepts:
            params = copy.deepcopy(PARAMS.get(name, {}))  # no shared objects: YAML aliases
            spec = {"column": f"c_{type_}", "transform": name, "type": type_, **params}
            if name == "truncate_date" and type_ == "date":
                spec["to"] = "month"
            out[f"{name}_{type_}"] = spec
    return out


@pytest.mark.parametrize("engine_name", [e for e in ENGINES if e in dialect.available()])
def test_every_transform_and_type_has_the_documented_type_in_the_catalog(
    engine_name, live, tmp_path: Path
):
    engine = live.get(engine_name)
    d = dialect.get(engine_name)
    doc = {
        "sqlanon": 1,
        "name": "types",
        "keys": {"table": "vt.keys"},
        "tables": tables(),
    }
    path = tmp_path / "types.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = build_plan([load_policy(path)])
    engine.execute(d.statement("create_schema", d.relation(("vt",))).text)
    engine.execute(
        d.statement(
            "create_table",
            d.relation(("vt", "src")),
            [d.ident(f"c_{t}") for t in TYPES],
            column_types=TYPES,
        ).text
    )
    engine.load_rows(("vt", "src"), [VALUES])
    for s in key_table_statements(("vt", "keys"), d):
        engine.execute(s.text)
    store(engine, d, ("vt", "keys"), "k", 1, b"view types test key, 32 bytes!!", replace=True)
    unsupported = set(d.features.unsupported_canonical)

    def runs_here(c) -> bool:  # type: ignore[no-untyped-def]
        if c.input_type in unsupported and REGISTRY[c.transform].reads_canonical_text:
            return False  # the dialect declares it cannot (docs/dialects.md)
        # mask_email repeats the canonical text of its value ~10 times; for a float that is
        # an analysis ZetaSQL's WASM service cannot answer (a protobuf decode error) — an
        # emulator limit (docs/dialects.md)
        return not (engine_name == "bigquery" and c.output == "mask_email_float")

    views = tuple(replace(v, columns=tuple(filter(runs_here, v.columns))) for v in plan.views)
    create(replace(plan, views=views), d, engine)
    wrong = []
    for view in views:
        catalog = {n.lower(): t for n, t in engine.columns(view.target)}
        for c in view.emitted_columns:
            got = logical(engine_name, catalog[c.output.lower()])
            if got != c.output_type:
                wrong.append((c.output, c.output_type, catalog[c.output.lower()]))
    assert len(views) == len(REGISTRY) - 1
    assert not wrong, f"{engine_name}: (column, documented, catalog) {wrong}"
