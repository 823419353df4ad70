"""`sqlanon deploy` runs a compiled, reviewed folder — never an edited one — and leaves an
append-only audit row per deploy: deploy, change the policy, deploy again (stale views kept),
prune, roll back by deploying the older folder; on DuckDB, PostgreSQL and Spark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import install_retail

from sqlanon import api
from sqlanon.sql import dialect
from sqlanon.warehouse.deploy import DeployError, deploy, verify

pytestmark = pytest.mark.xdist_group("deploy")

REPO = Path(__file__).resolve().parents[1]
ENGINES = ["duckdb", "postgres", "snowflake", "spark"]


def _workspace(tmp_path: Path) -> Path:
    """A copy of examples/retail and the fragments it includes, to edit."""
    shutil.copytree(REPO / "examples" / "retail", tmp_path / "examples" / "retail")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    shutil.rmtree(tmp_path / "examples" / "retail" / "build")
    return tmp_path / "examples" / "retail" / "policy.yml"


def _compile(policy: Path, name: str, out: Path) -> Path:
    api.write(api.plan([policy]), out, name)
    return out


def _views(engine, d: dialect.Dialect) -> set[str]:  # type: ignore[no-untyped-def]
    found = set()
    for target in ("customers", "orders", "web_sessions", "mine"):
        try:
            engine.query(d.statement("count_relation", d.relation(("anon", target))).text)
            found.add(target)
        except Exception:
            pass
    return found


@pytest.mark.parametrize("name", ENGINES)
def test_deploy_change_prune_and_roll_back(tmp_path: Path, live, name: str) -> None:
    engine = live.get(name)
    d = dialect.get(name)
    policy = _workspace(tmp_path)
    install_retail(engine, 200, seed=5)
    for stale in ("customers", "orders", "web_sessions", "mine"):
        engine.execute(d.statement("drop_view", d.relation(("anon", stale))).text)
    engine.execute(f"DROP TABLE IF EXISTS {d.relation(('privacy', 'sqlanon_deploys')).text}")
    old = _compile(policy, name, tmp_path / "old")

    first = deploy(verify(old), engine)
    assert first.deploy == 1 and first.stale == [] and first.pruned == []
    assert [f for f in first.ran if f.startswith("views/")] == [
        "views/anon.customers.sql",
        "views/anon.orders.sql",
        "views/anon.web_sessions.sql",
    ]
    assert first.recorded == [  # refresh scripts: recorded, run per epoch by the scheduler
        "releases/analytics.customers_by_country.sql",
        "releases/analytics.orders_by_status_year.sql",
    ]
    assert _views(engine, d) == {"customers", "orders", "web_sessions"}
    # an object sqlanon did not create is never pruned
    engine.execute(f"CREATE VIEW {d.relation(('anon', 'mine')).text} AS SELECT 1 AS x")

    # the policy changes: web_sessions goes, customers loses a column (a view whose columns
    # change is dropped and created again in the deploy's transaction)
    text = policy.read_text()
    start = text.index("  web_sessions:")
    end = text.index("\n\n", start)
    policy.write_text(text[:start] + text[end + 2 :].lstrip("\n"))
    policy.write_text(policy.read_text().replace("      phone: {rule: phone}\n", ""))
    new = _compile(policy, name, tmp_path / "new")

    second = deploy(verify(new), engine)
    assert second.deploy == 2 and second.stale == ["anon.web_sessions"] and second.pruned == []
    assert _views(engine, d) == {"customers", "orders", "web_sessions", "mine"}
    third = deploy(verify(new), engine, prune=True)
    assert third.pruned == ["anon.web_sessions"] and third.stale == []
    assert _views(engine, d) == {"customers", "orders", "mine"}

    # rolling back is deploying the older folder
    fourth = deploy(verify(old), engine)
    assert fourth.deploy == 4 and fourth.stale == []
    assert _views(engine, d) == {"customers", "orders", "web_sessions", "mine"}
    columns = [c.lower() for c, _ in engine.columns(("anon", "customers"))]
    assert "phone" in columns

    audit = d.relation(("privacy", "sqlanon_deploys")).text
    names = ("deploy", "manifest_sha256", "objects", "pruned", "database_user", "sqlanon_version")
    columns_sql = ", ".join(d.ident(c).text for c in names)
    rows = sorted(engine.query(f"SELECT {columns_sql} FROM {audit}"))
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert rows[0][1] == rows[3][1] == verify(old).manifest_sha256 != rows[1][1]
    objects = json.loads(rows[0][2])
    manifest = json.loads((old / "manifest.json").read_text())
    assert {o["file"]: o["sha256"] for o in objects} == {
        o["file"]: manifest["files"][o["file"]] for o in manifest["objects"]
    }
    assert json.loads(rows[2][3]) == ["anon.web_sessions"]
    assert all(r[4] and r[5] for r in rows)


def test_an_edited_or_unlisted_file_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    policy = _workspace(tmp_path)
    folder = _compile(policy, "duckdb", tmp_path / "build")
    view = folder / "views" / "anon.customers.sql"
    original = view.read_bytes()
    view.write_bytes(original.replace(b'WHERE "_sqlanon_class_size" >= 5', b"WHERE TRUE"))
    with pytest.raises(DeployError, match=r"anon\.customers\.sql: differs from the digest"):
        verify(folder)
    view.write_bytes(original)
    (folder / "views" / "extra.sql").write_text("DROP TABLE raw.customers;")
    with pytest.raises(DeployError, match=r"views/extra\.sql not in manifest\.json"):
        verify(folder)
    (folder / "views" / "extra.sql").unlink()
    (folder / "views" / "anon.orders.sql").unlink()
    with pytest.raises(DeployError, match=r"listed in the manifest but missing"):
        verify(folder)


def test_a_folder_the_policy_no_longer_compiles_to_is_stale(tmp_path: Path) -> None:
    policy = _workspace(tmp_path)
    folder = _compile(policy, "duckdb", tmp_path / "build")
    fresh = {a.path: a.content for a in api.build(api.plan([policy]), "duckdb")}
    verify(folder, expected=fresh)
    policy.write_text(policy.read_text().replace("k: 5", "k: 3"))
    fresh = {a.path: a.content for a in api.build(api.plan([policy]), "duckdb")}
    with pytest.raises(DeployError, match=r"is stale: .*views/anon\.customers\.sql"):
        verify(folder, expected=fresh)


def test_a_folder_for_another_dialect_is_refused(tmp_path: Path, live) -> None:
    policy = _workspace(tmp_path)
    folder = _compile(policy, "postgres", tmp_path / "build")
    with pytest.raises(DeployError, match=r"compiled for PostgreSQL, but the database is DuckDB"):
        deploy(verify(folder), live.get("duckdb"))


@pytest.mark.parametrize("name", ENGINES)
def test_an_audit_table_of_an_earlier_sqlanon_gains_its_new_column(
    tmp_path: Path, live, name: str
) -> None:
    """The audit table gained `lookup_tables`: one an earlier sqlanon created is kept and the
    column added (rows already in it read NULL there, taken as no lookup tables); before, the
    deploy failed with the engine's own error about the missing column."""
    from sqlanon.warehouse.common import append_only_table
    from sqlanon.warehouse.deploy import AUDIT_COLUMNS

    engine = live.get(name)
    d = dialect.get(name)
    policy = _workspace(tmp_path)
    install_retail(engine, 50, seed=5)
    table = ("privacy", "sqlanon_deploys")
    engine.execute(f"DROP TABLE IF EXISTS {d.relation(table).text}")
    older = [c for c in AUDIT_COLUMNS if c[0] != "lookup_tables"]
    for s in append_only_table(d, table, older):
        engine.execute(s)
    first = deploy(verify(_compile(policy, name, tmp_path / "a")), engine)
    assert first.deploy == 1
    names = [n.lower() for n, _ in engine.columns(table)]
    assert "lookup_tables" in names
    second = deploy(verify(_compile(policy, name, tmp_path / "b")), engine)
    assert second.deploy == 2
