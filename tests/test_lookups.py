"""A large hierarchy is a lookup table the view's file fills (sqlanon/sql/lookups.py): deploy,
edit the hierarchy, deploy again (the table is refilled, never doubled), shrink it below the
inline size and prune (the table is dropped), on every engine deploy runs on. The lowering's
meaning is also checked value by value by the conformance vectors (dialects/conformance/
generalize.yml, `pad:`), on all five engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlanon import api
from sqlanon.sql import dialect
from sqlanon.sql.lookups import lookup_table_name
from sqlanon.warehouse.deploy import deploy, verify

pytestmark = pytest.mark.xdist_group("deploy")

ENGINES = ["duckdb", "postgres", "snowflake", "spark"]
POLICY = """
sqlanon: 1
name: lookups
tables:
  people:
    source: lk_raw.people
    target: lk_anon.people
    columns:
      id: {transform: keep, type: integer}
      code: {transform: generalize, hierarchy: codes.csv, level: 1, unknown: "(none)"}
"""
CODES = [None, "", "O'Brien", "c0", "c7", "c1499", "c1500", "C7", "c7 ", "back\\slash"]


def _hierarchy(path: Path, size: int, groups: int) -> dict[str, str]:
    pairs = {f"c{i}": f"g{i % groups}" for i in range(size)}
    pairs["O'Brien"] = "it's"
    pairs["back\\slash"] = "a \\ b"
    path.write_text("".join(f"{v};{t};*\n" for v, t in pairs.items()))
    return pairs


def _rows(engine, d: dialect.Dialect) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    view = d.relation(("lk_anon", "people")).text
    return sorted(engine.query(f"SELECT id, code FROM {view}"), key=lambda r: r[0])


def _expected(pairs: dict[str, str]) -> list[tuple[int, str | None]]:
    return [(i, None if c is None else pairs.get(c, "(none)")) for i, c in enumerate(CODES)]


def _count(engine, d: dialect.Dialect, table: tuple[str, ...]) -> int:  # type: ignore[no-untyped-def]
    return int(engine.query(d.statement("count_relation", d.relation(table)).text)[0][0])


@pytest.mark.parametrize("name", ENGINES)
def test_a_lookup_table_is_refilled_on_redeploy_and_pruned(tmp_path: Path, live, name) -> None:  # type: ignore[no-untyped-def]
    engine = live.get(name)
    d = dialect.get(name)
    engine.execute(d.statement("drop_view", d.relation(("lk_anon", "people"))).text)
    for table in (("lk_raw", "people"), ("privacy", "sqlanon_deploys")):
        engine.execute(d.statement("drop_table", d.relation(table)).text)
    engine.execute(d.statement("create_schema", d.relation(("lk_raw",))).text)
    engine.execute(
        d.statement(
            "create_table",
            d.relation(("lk_raw", "people")),
            [d.ident("id"), d.ident("code")],
            column_types=("integer", "text"),
        ).text
    )
    engine.load_rows(("lk_raw", "people"), list(enumerate(CODES)))
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    hierarchy = tmp_path / "codes.csv"
    table = lookup_table_name(("lk_anon", "people"), "code")

    pairs = _hierarchy(hierarchy, 1500, 7)
    api.write(api.plan([policy]), tmp_path / "one", name)
    first = deploy(verify(tmp_path / "one"), engine)
    assert first.lookup_tables == [".".join(table)]
    assert _rows(engine, d) == _expected(pairs)
    assert _count(engine, d, table) == len(pairs)

    # the hierarchy changes: the same table is emptied and filled again, in the deploy
    pairs = _hierarchy(hierarchy, 1500, 5)
    api.write(api.plan([policy]), tmp_path / "two", name)
    deploy(verify(tmp_path / "two"), engine)
    assert _rows(engine, d) == _expected(pairs)
    assert _count(engine, d, table) == len(pairs)

    # small enough to be written into the view: the table is no longer joined; prune drops it
    pairs = _hierarchy(hierarchy, 10, 3)
    api.write(api.plan([policy]), tmp_path / "three", name)
    kept = deploy(verify(tmp_path / "three"), engine)
    assert kept.lookup_tables == [".".join(table)] and kept.pruned == []
    pruned = deploy(verify(tmp_path / "three"), engine, prune=True)
    assert pruned.pruned == [".".join(table)] and pruned.lookup_tables == []
    assert _rows(engine, d) == _expected(pairs)
    with pytest.raises(Exception):  # noqa: B017 - each engine raises its own error
        _count(engine, d, table)

    audit = d.relation(("privacy", "sqlanon_deploys")).text
    owned = engine.query(f"SELECT {d.ident('lookup_tables').text} FROM {audit}")
    assert sorted(len(json.loads(r[0])) for r in owned) == [0, 1, 1, 1]
