"""A live warehouse (issue 19), on the real PostgreSQL server: refreshes racing each other,
analysts reading plans while views and releases change under them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect
from sqlanon.sql.releases import ledger_statements
from sqlanon.warehouse.apply import RefreshRefused, create_key_tables, run_release
from sqlanon.warehouse.keys import store
from sqlanon.warehouse.postgres import PostgresEngine

D = dialect.get("postgres")
RACERS = 20

RACE = """
sqlanon: 1
name: race
keys: {table: race.keys}
budget: {ledger: race.ledger, epsilon: BUDGET}
releases:
  r:
    source: race.src
    target: race.out
    privacy_unit: u
    unit_type: integer
    epsilon: 1
    group_by: {g: {transform: keep, type: integer}}
    groups: {public: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}
    measures: {n: {agg: count}}
"""


def dsn(engine) -> str:  # type: ignore[no-untyped-def]
    info = engine.conn.info
    return f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"


def race_plan(engine, tmp_path: Path, budget: int):  # type: ignore[no-untyped-def]
    engine.execute("DROP SCHEMA IF EXISTS race CASCADE")
    engine.execute("CREATE SCHEMA race")
    engine.execute(
        "CREATE TABLE race.src AS SELECT g, g * 100 + k AS u "
        "FROM generate_series(0, 11) AS a(g), generate_series(1, 30) AS b(k)"
    )
    path = tmp_path / "race.yml"
    path.write_text(RACE.replace("BUDGET", str(budget)))
    plan = build_plan([load_policy(path)])
    (r,) = plan.releases
    create_key_tables(plan, D, engine)
    store(engine, D, r.key_table, "noise", 1, b"race noise key, 32 bytes long!!", replace=True)
    for s in ledger_statements(r.ledger, D):
        engine.execute(s.text)
    return r


def race(engine, r, epoch: int) -> list[str]:  # type: ignore[no-untyped-def]
    """RACERS refreshes of one epoch at once, each on its own connection (the table not
    created yet: the first refreshes also race to create it). Returns how each ended."""
    outcomes: list[str] = []
    start = threading.Barrier(RACERS)

    def one() -> None:
        e = PostgresEngine(dsn(engine))
        try:
            e.set_epoch(epoch)
            start.wait()
            run_release(r, D, e)
            outcomes.append("ok")
        except RefreshRefused:
            outcomes.append("refused")
        except Exception as exc:  # any other end is a failure of the test
            outcomes.append(f"error: {exc}")
        finally:
            e.close()

    threads = [threading.Thread(target=one) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("budget", [RACERS, 1])
def test_concurrent_refreshes_of_one_epoch_leave_one_epochs_rows_and_a_true_ledger(
    live, tmp_path, budget
):
    """Before: under READ COMMITTED the second DELETE did not see the first run's rows (20 of
    20 tries doubled the epoch), and the first refreshes raced to create the table. Now the
    refreshes of one ledger run one at a time: with room in the budget each replaces the
    epoch's rows; with room for one, the others are refused cleanly."""
    engine = live.get("postgres")
    r = race_plan(engine, tmp_path, budget)
    outcomes = race(engine, r, epoch=7)
    assert len(outcomes) == RACERS
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    succeeded = outcomes.count("ok")
    assert succeeded == min(budget, RACERS)
    assert engine.query("SELECT count(*), count(DISTINCT g) FROM race.out") == [(12, 12)]
    ledger = engine.query("SELECT count(*), count(DISTINCT nonce) FROM race.ledger")
    assert ledger == [(succeeded, succeeded)], "one ledger row, one nonce per refresh that wrote"


# -- plans must not see through suppression ------------------------------------------------------


COUNTS = ("Actual Rows", "Actual Loops", "Rows Removed by Filter", "Rows Removed by Join Filter")


def plan_numbers(node, raw_only: bool = False, out=None):  # type: ignore[no-untyped-def]
    """Every row count an EXPLAIN ANALYZE plan shows, in plan order (raw_only: only those of
    nodes that read a source table)."""
    out = [] if out is None else out
    if not raw_only or node.get("Schema") == "raw":
        out += [(node.get("Node Type"), k, node[k]) for k in COUNTS if k in node]
    for child in node.get("Plans", []):
        plan_numbers(child, raw_only, out)
    return out


def explain_as_analyst(engine, sql: str, raw_only: bool = False):  # type: ignore[no-untyped-def]
    engine.execute("SET ROLE analyst")
    try:
        (doc,) = engine.query(
            f"EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, FORMAT JSON) {sql}"
        )[0]
    finally:
        engine.execute("RESET ROLE")
    return plan_numbers(doc[0]["Plan"], raw_only)


def test_explain_analyze_shows_nothing_of_a_suppressed_class(live):
    """Before: a filter on the quasi-identifiers was pushed below the k-anonymity window to the
    raw scan, and `actual rows=2` told the analyst that a suppressed class of two existed.
    Every number in the plan must be the same for a suppressed class and for a class that
    does not exist — and for a kept class it may only show what the view releases."""
    from conftest import install_retail

    from sqlanon.warehouse.apply import create

    engine = live.get("postgres")
    plan = install_retail(engine, 400, seed=19)
    for i in (1, 2):  # two customers in a class of their own: suppressed at k = 5
        engine.execute(
            "INSERT INTO raw.customers (customer_id, full_name, email, phone, birth_date, gender,"
            " zip, country, occupation, income, signup_date, notes) VALUES "
            f"({100000 + i}, 'x', 'x@y.z', '555', DATE '1990-05-05', 'F', '99911', 'MX', "
            "'Nurse', 10000, DATE '2024-01-01', '')"
        )
    create(plan, D, engine)
    where = "SELECT * FROM anon.customers WHERE country = '{}' AND zip = '{}'"
    engine.execute("SET ROLE analyst")
    try:
        assert engine.query(where.format("MX", "999")) == [], "the class is suppressed"
    finally:
        engine.execute("RESET ROLE")
    suppressed = explain_as_analyst(engine, where.format("MX", "999"))
    missing = explain_as_analyst(engine, where.format("ZZ", "998"))
    assert suppressed == missing, (suppressed, missing)
    # sampled and retention-filtered views: what the scans of the sources show does not
    # depend on the analyst's filter (it would count raw rows the view leaves out)
    for view, some, none in (
        ("web_sessions", "pages = 3", "pages = -1"),
        ("orders", "status = 'delivered'", "status = 'none'"),
    ):
        scans = [
            explain_as_analyst(engine, f"SELECT * FROM anon.{view}{w}", raw_only=True)
            for w in ("", f" WHERE {some}", f" WHERE {none}")
        ]
        assert scans[0] and scans[0] == scans[1] == scans[2], (view, scans)


# -- deploying policy edits under readers ---------------------------------------------------------

EDIT = """
sqlanon: 1
name: edit
keys: {table: edit.keys, versions: {person: VERSION}}
tables:
  people:
    source: edit.src
    target: edit.people
    grants: [analyst]
    columns: COLUMNS
  visits:
    source: edit.visits
    target: edit.visits_anon
    grants: [analyst]
    columns:
      person: {column: pid, transform: pseudonymize, key: person, type: integer}
      n: keep
"""
COLUMNS = "{pid: {transform: pseudonymize, key: person, type: integer}, name: keep, city: keep}"


def edit_plan(engine, tmp_path: Path, columns: str = COLUMNS, version: int = 1):  # type: ignore[no-untyped-def]
    path = tmp_path / f"edit{version}.yml"
    path.write_text(EDIT.replace("COLUMNS", columns).replace("VERSION", str(version)))
    return build_plan([load_policy(path)])


@pytest.fixture
def edit_db(live, tmp_path):  # type: ignore[no-untyped-def]
    engine = live.get("postgres")
    engine.execute("DROP SCHEMA IF EXISTS edit CASCADE")
    engine.execute("DROP SCHEMA IF EXISTS mine CASCADE")
    engine.execute(
        "DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    engine.execute("CREATE SCHEMA edit")
    engine.execute(
        "CREATE TABLE edit.src AS SELECT i AS pid, 'n' || i AS name, 'c' || (i % 3) AS city "
        "FROM generate_series(1, 50) AS g(i)"
    )
    engine.execute(
        "CREATE TABLE edit.visits AS SELECT i % 50 + 1 AS pid, i AS n "
        "FROM generate_series(1, 200) AS g(i)"
    )
    plan = edit_plan(engine, tmp_path)
    create_key_tables(plan, D, engine)
    for version in (1, 2):
        store(
            engine,
            D,
            ("edit", "keys"),
            "person",
            version,
            f"person key v{version}!!!!!!!!!!!".encode(),
        )
    yield engine
    engine.execute("DROP SCHEMA IF EXISTS mine CASCADE")
    engine.execute("DROP SCHEMA IF EXISTS edit CASCADE")


def analyst_columns(engine) -> list[str]:  # type: ignore[no-untyped-def]
    engine.execute("SET ROLE analyst")
    try:
        cur = engine.conn.execute("SELECT * FROM edit.people LIMIT 0")
        return [c.name for c in cur.description]
    finally:
        engine.execute("RESET ROLE")


@pytest.mark.parametrize(
    "edited, expected",
    [
        (
            "{pid: {transform: pseudonymize, key: person, type: integer}, city: keep}",
            ["pid", "city"],
        ),
        (
            COLUMNS.replace("name: keep", "full_name: {column: name, transform: keep}"),
            ["pid", "full_name", "city"],
        ),
        (
            COLUMNS.replace("name: keep", "name: {transform: constant, value: 1}"),
            ["pid", "name", "city"],
        ),
    ],
    ids=["dropped", "renamed", "retyped"],
)
def test_a_removed_renamed_or_retyped_column_is_gone_for_the_analyst(
    edit_db, tmp_path, edited, expected
):
    """Before: CREATE OR REPLACE VIEW refused the edit and the old view kept serving the
    column the reviewer approved removing."""
    from sqlanon.warehouse.apply import create

    create(edit_plan(edit_db, tmp_path), D, edit_db)
    assert analyst_columns(edit_db) == ["pid", "name", "city"]
    create(edit_plan(edit_db, tmp_path, edited), D, edit_db)
    assert analyst_columns(edit_db) == expected


def test_a_view_others_depend_on_is_not_dropped_and_the_deploy_names_them(edit_db, tmp_path):
    from sqlanon.warehouse.apply import DeployError, create

    create(edit_plan(edit_db, tmp_path), D, edit_db)
    edit_db.execute("CREATE SCHEMA mine")
    edit_db.execute(
        "CREATE VIEW mine.report AS SELECT city, count(*) AS n FROM edit.people GROUP BY city"
    )
    edited = "{pid: {transform: pseudonymize, key: person, type: integer}, city: keep}"
    with pytest.raises(DeployError, match=r"mine\.report.*Nothing was changed"):
        create(edit_plan(edit_db, tmp_path, edited), D, edit_db)
    assert analyst_columns(edit_db) == ["pid", "name", "city"], "the old view, unchanged"
    assert edit_db.query("SELECT count(*) FROM mine.report") == [(3,)]


def test_a_deploy_behind_a_long_query_gives_up_without_blocking_readers(edit_db, tmp_path):
    """Before: a redeploy waiting on a long analyst query queued a trivial reader for 13 s."""
    import time

    from sqlanon.warehouse.apply import DeployError, create

    create(edit_plan(edit_db, tmp_path), D, edit_db)
    long_reader = PostgresEngine(dsn(edit_db))
    long_reader.execute("BEGIN")
    long_reader.query("SELECT count(*) FROM edit.people")  # holds its lock until it ends
    waits: list[float] = []
    done = threading.Event()

    def short_reader() -> None:
        e = PostgresEngine(dsn(edit_db))
        try:
            while not done.is_set():
                start = time.perf_counter()
                e.query("SELECT * FROM edit.people LIMIT 10")
                waits.append(time.perf_counter() - start)
                time.sleep(0.05)
        finally:
            e.close()

    reader = threading.Thread(target=short_reader)
    reader.start()
    try:
        started = time.perf_counter()
        with pytest.raises(DeployError, match=r"gave up.*Nothing was changed"):
            create(edit_plan(edit_db, tmp_path, version=2), D, edit_db, lock_timeout_ms=1000)
        assert time.perf_counter() - started < 10
    finally:
        done.set()
        reader.join()
        long_reader.execute("ROLLBACK")
        long_reader.close()
    assert waits and max(waits) < 3, f"a short reader waited {max(waits):.1f} s"


def test_a_key_rotation_never_shows_an_empty_join(edit_db, tmp_path):
    """Before: views deployed one file at a time used different key versions for 3 s and the
    join on the pseudonym came up empty. Now every view changes in one transaction."""
    from sqlanon.warehouse.apply import create

    create(edit_plan(edit_db, tmp_path), D, edit_db)
    join = "SELECT count(*) FROM edit.people AS p JOIN edit.visits_anon AS v ON p.pid = v.person"
    counts: list[int] = []
    done = threading.Event()

    def joiner() -> None:
        e = PostgresEngine(dsn(edit_db))
        try:
            while not done.is_set():
                counts.append(e.query(join)[0][0])
        finally:
            e.close()

    thread = threading.Thread(target=joiner)
    thread.start()
    plans = [edit_plan(edit_db, tmp_path, version=version) for version in (2, 1)]
    deploys = 0
    try:
        # at least 5 rotations, and until the reader has joined 20 times while they ran: how
        # many reads fit between deploys depends on the machine's load, not on the property
        while deploys < 5 or (len(counts) < 20 and deploys < 500):
            create(plans[deploys % 2], D, edit_db)
            deploys += 1
    finally:
        done.set()
        thread.join()
    assert len(counts) >= 20 and set(counts) == {200}, (len(counts), sorted(set(counts)))
