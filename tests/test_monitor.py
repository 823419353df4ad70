"""`sqlanon monitor` as a scheduled job would run it: a baseline, an unchanged day, a day
with a new unique person (k falls, a sample unique appears), a day with a new source column;
each run appended to the history table in the warehouse, each change named, exit 1 only when
something got worse."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from sqlanon.measure.monitor import Figure, compare

POLICY = """sqlanon: 1
name: mon
tables:
  p:
    source: raw.p
    target: anon.p
    columns:
      age: {transform: bucket, width: 10}
      zip: {transform: prefix, length: 3}
      visits: keep
"""


def test_a_scheduled_monitor_names_what_got_worse(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db, policy = str(tmp_path / "m.duckdb"), tmp_path / "mon.yml"
    policy.write_text(POLICY)
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.p AS SELECT 20 + i % 20 AS age, "
        "CASE WHEN i % 2 = 0 THEN '12345' ELSE '12399' END AS zip, i AS visits FROM range(40) t(i)"
    )
    con.close()
    assert cli("apply", str(policy), "--db", db).exit_code == 0

    first = cli("monitor", str(policy), "--db", db)
    assert first.exit_code == 0, first.output
    assert "first run: the baseline, stored in privacy.sqlanon_monitor" in first.output
    second = cli("monitor", str(policy), "--db", db)
    assert second.exit_code == 0 and "nothing got worse since run 1" in second.output

    con = duckdb.connect(db)
    con.execute("INSERT INTO raw.p VALUES (85, '99999', 1)")  # a person unlike anyone else
    con.close()
    third = cli("monitor", str(policy), "--db", db)
    assert third.exit_code == 1
    assert "changed: anon.p: k fell from 20 to 1" in third.output
    assert "changed: anon.p: sample uniques rose from 0 to 1" in third.output

    con = duckdb.connect(db)
    con.execute("ALTER TABLE raw.p ADD COLUMN email VARCHAR")
    con.close()
    fourth = cli("monitor", str(policy), "--db", db, "--format", "json")
    assert fourth.exit_code == 1
    doc = json.loads(fourth.output)
    assert doc["changes"] == ["schema changed: warning: table p: raw.p.email: new_column"], doc
    assert doc["figures"]["anon.p: k"] == 1 == doc["previous"]["anon.p: k"]

    con = duckdb.connect(db)
    history = con.execute(
        "SELECT run, changes, figures FROM privacy.sqlanon_monitor ORDER BY run"
    ).fetchall()
    con.close()
    assert [r[0] for r in history] == [1, 2, 3, 4]
    assert [len(json.loads(r[1])) for r in history] == [0, 0, 5, 1]
    assert json.loads(history[0][2])["anon.p: k"] == 20


def test_what_counts_as_worse() -> None:
    before = {
        "v: k": 5,
        "v: t of s": 0.2,
        "v: t of s2": 0.1,
        "v: rows": 100,
        "v: check": 1,
        "s": ["a"],
    }
    now = [
        Figure("v: k", 6, "down"),  # better
        Figure("v: t of s", 0.3, "up"),  # worse
        Figure("v: rows", 50, None),  # stored, never flagged
        Figure("v: t of s2", 0.1 + 1e-15, "up"),  # float noise, not a change
        Figure("v: check", 0, "check"),  # stopped holding
        Figure("s", ["a", "b", "error: c"], "schema"),  # new findings
    ]
    assert compare(now, before) == [
        "v: t of s rose from 0.2 to 0.3",
        "v: check: no longer holds",
        "schema changed: b",
        "schema changed: error: c",
    ]
    # the first run flags only what is already wrong: a failing check, a drift error
    assert compare(now, None) == ["v: check: no longer holds", "schema changed: error: c"]


def test_monitor_on_postgresql_by_url(cli, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same job against a PostgreSQL server given by URL: history in the warehouse, a new
    unique person named."""
    engine = live.get("postgres")
    info = engine.conn.info
    url = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    policy = tmp_path / "mon.yml"
    policy.write_text(POLICY.replace("raw.p", "mon_raw.p").replace("anon.p", "mon_anon.p"))
    engine.execute("DROP VIEW IF EXISTS mon_anon.p")
    engine.execute("DROP TABLE IF EXISTS mon_raw.p")
    engine.execute("DROP TABLE IF EXISTS privacy.sqlanon_monitor")
    engine.execute("CREATE SCHEMA IF NOT EXISTS mon_raw")
    engine.execute(
        "CREATE TABLE mon_raw.p AS SELECT 20 + i % 20 AS age, CASE WHEN i % 2 = 0 "
        "THEN '12345' ELSE '12399' END AS zip, i AS visits FROM generate_series(0, 39) AS i"
    )
    assert cli("apply", str(policy), "--db", url).exit_code == 0
    first = cli("monitor", str(policy), "--db", url)
    assert first.exit_code == 0, first.output
    engine.execute("INSERT INTO mon_raw.p VALUES (85, '99999', 1)")
    second = cli("monitor", str(policy), "--db", url)
    assert second.exit_code == 1, second.output
    assert "changed: mon_anon.p: k fell from 20 to 1" in second.output
    runs = engine.query("SELECT run FROM privacy.sqlanon_monitor ORDER BY run")
    assert [r[0] for r in runs] == [1, 2]
