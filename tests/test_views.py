"""The compiled views, executed in DuckDB: privacy by default, keys, retention, sampling and
k-anonymity behave as documented."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql.views import key_table_statements, view_statements
from sqlanon.warehouse.apply import SourceError, create, report
from sqlanon.warehouse.keys import store

KEYS = ("privacy", "sqlanon_keys")


def plan_of(tmp_path: Path, text: str):
    path = tmp_path / "policy.yml"
    path.write_text(text)
    return build_plan([load_policy(path)])


def with_keys(engine, duck, *names: str, version: int = 1) -> None:
    for s in key_table_statements(KEYS, duck):
        engine.execute(s.text)
    for name in names:
        store(engine, duck, KEYS, name, version, (name * 32).encode()[:32])


PEOPLE = """
sqlanon: 1
name: people
keys: {table: privacy.sqlanon_keys}
tables:
  people:
    source: raw.people
    target: anon.people
    columns:
      id: {transform: pseudonymize, key: person, length: 16, type: integer}
      email: {transform: mask_email}
      city: keep
"""


@pytest.fixture
def people(engine):
    engine.execute("CREATE SCHEMA raw")
    engine.execute("CREATE TABLE raw.people (id INTEGER, email VARCHAR, city VARCHAR, ssn VARCHAR)")
    engine.execute(
        "INSERT INTO raw.people VALUES (1, 'ann@example.com', 'Oslo', '111'), "
        "(2, 'bob@example.com', 'Oslo', '222')"
    )
    return engine


def test_unlisted_and_later_added_columns_never_reach_the_view(tmp_path, duck, people):
    plan = plan_of(tmp_path, PEOPLE)
    with_keys(people, duck, "person")
    create(plan, duck, people)
    people.execute("ALTER TABLE raw.people ADD COLUMN salary INTEGER DEFAULT 100000")
    people.execute("CREATE OR REPLACE TABLE raw.people AS SELECT *, 'x' AS secret FROM raw.people")
    cols = [r[0] for r in people.query("DESCRIBE anon.people")]
    assert cols == ["id", "email", "city"]
    assert len(people.query("SELECT * FROM anon.people")) == 2


def test_views_read_explicit_source_columns_never_star(tmp_path, duck):
    """A column added to a source table never flows into a view: the source is read by
    listed columns; `*` only carries the view's own step CTEs forward (each step adds the
    values several columns share to the columns before it)."""
    plan = plan_of(tmp_path, PEOPLE)
    stars = 0
    for view in plan.views:
        for statement in view_statements(view, duck):
            tree = sqlglot.parse_one(statement.text, read="duckdb")
            for select in tree.find_all(exp.Select):
                if any(isinstance(e, exp.Star) for e in select.expressions):
                    stars += 1
                    source = select.args["from_"].this
                    assert isinstance(source, exp.Table) and not source.db
                    assert source.name.startswith(("_sqlanon_input", "_sqlanon_step"))
    assert stars


def test_unlisted_columns_error_mode_refuses_a_source_with_extra_columns(tmp_path, duck, people):
    plan = plan_of(
        tmp_path, PEOPLE.replace("tables:", "defaults: {unlisted_columns: error}\ntables:")
    )
    with_keys(people, duck, "person")
    with pytest.raises(
        SourceError, match=r"raw.people has columns the policy does not name \(ssn\)"
    ):
        create(plan, duck, people)


def test_a_missing_key_is_a_clear_query_error(tmp_path, duck, people):
    plan = plan_of(tmp_path, PEOPLE)
    with_keys(people, duck)  # the key relation exists but holds no key
    create(plan, duck, people)
    with pytest.raises(
        Exception, match=r"key 'person' version 1 is missing from privacy\.sqlanon_keys"
    ):
        people.query("SELECT * FROM anon.people")


def test_key_versions_select_the_stored_version(tmp_path, duck, people):
    with_keys(people, duck, "person")
    store(people, duck, KEYS, "person", 2, b"another key entirely, version 2")
    v1 = plan_of(tmp_path, PEOPLE)
    create(v1, duck, people)
    ids_v1 = people.query("SELECT id FROM anon.people ORDER BY email")
    v2 = plan_of(
        tmp_path,
        PEOPLE.replace(
            "keys: {table: privacy.sqlanon_keys}",
            "keys: {table: privacy.sqlanon_keys, versions: {person: 2}}",
        ),
    )
    create(v2, duck, people)
    ids_v2 = people.query("SELECT id FROM anon.people ORDER BY email")
    assert ids_v1 != ids_v2 and len(ids_v2[0][0]) == 16


def test_pseudonyms_join_across_tables(tmp_path, duck, engine):
    engine.execute("CREATE SCHEMA raw")
    engine.execute("CREATE TABLE raw.a AS SELECT range AS id FROM range(100)")
    engine.execute("CREATE TABLE raw.b AS SELECT range % 50 AS customer FROM range(300)")
    plan = plan_of(
        tmp_path,
        """
sqlanon: 1
name: j
keys: {table: privacy.sqlanon_keys}
tables:
  a:
    source: raw.a
    target: anon.a
    columns: {id: {transform: pseudonymize, key: c, type: integer}}
  b:
    source: raw.b
    target: anon.b
    columns:
      customer: {transform: pseudonymize, key: c, type: integer}
""",
    )
    with_keys(engine, duck, "c")
    create(plan, duck, engine)
    (matched,) = engine.query("SELECT COUNT(*) FROM anon.b JOIN anon.a ON b.customer = a.id")[0]
    assert matched == 300


def test_retention_keeps_recent_rows_only(tmp_path, duck, engine):
    today = engine.query("SELECT CURRENT_DATE")[0][0]
    engine.execute("CREATE SCHEMA raw")
    engine.execute('CREATE TABLE raw.ev (id INTEGER, "at" DATE)')  # a reserved word
    rows = [
        (1, today),
        (2, today - dt.timedelta(days=30)),
        (3, today - dt.timedelta(days=31)),
        (4, None),
        (5, today - dt.timedelta(days=4000)),
    ]
    for r in rows:
        engine.execute("INSERT INTO raw.ev VALUES (?, ?)", r)
    plan = plan_of(
        tmp_path,
        """
sqlanon: 1
name: r
tables:
  ev:
    source: raw.ev
    target: anon.ev
    retention: {column: at, max_age_days: 30}
    columns: {id: keep}
""",
    )
    create(plan, duck, engine)
    assert [r[0] for r in engine.query("SELECT id FROM anon.ev ORDER BY id")] == [1, 2]


SAMPLED = """
sqlanon: 1
name: s
keys: {table: privacy.sqlanon_keys}
tables:
  u:
    source: raw.u
    target: anon.u
    sample: {unit: uid, fraction: 0.2, key: sampling}
    columns: {uid: {transform: keep, type: integer}}
  e:
    source: raw.e
    target: anon.e
    sample: {unit: uid, fraction: 0.2, key: sampling}
    columns: {uid: {transform: keep, type: integer}, n: keep}
"""


def test_sampling_is_keyed_deterministic_and_consistent_across_tables(tmp_path, duck, engine):
    engine.execute("CREATE SCHEMA raw")
    engine.execute(
        "CREATE TABLE raw.u AS SELECT range AS uid FROM range(20000) UNION ALL SELECT NULL"
    )
    engine.execute(
        "CREATE TABLE raw.e AS SELECT range % 20000 AS uid, range AS n FROM range(60000)"
    )
    with_keys(engine, duck, "sampling")
    create(build_plan([load_policy(_write(tmp_path, SAMPLED))]), duck, engine)
    first = {r[0] for r in engine.query("SELECT uid FROM anon.u")}
    engine.execute("SELECT setseed(0.42)")
    again = {r[0] for r in engine.query("SELECT uid FROM anon.u")}
    assert first == again and None not in first
    n, p = 20000, 0.2
    assert abs(len(first) - n * p) < 5 * math.sqrt(n * p * (1 - p))  # 5 sigma
    events = {r[0] for r in engine.query("SELECT DISTINCT uid FROM anon.e")}
    assert events == first, "the same units are sampled in every table"
    store(engine, duck, KEYS, "sampling", 1, b"a different sampling key!!!!!!!!", replace=True)
    other = {r[0] for r in engine.query("SELECT uid FROM anon.u")}
    assert len(other & first) < 0.3 * len(first)  # independent draws overlap by ~20 %


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yml"
    path.write_text(text)
    return path


KANON = """
sqlanon: 1
name: k
tables:
  t:
    source: raw.t
    target: anon.t
    columns:
      zip: {transform: prefix, length: 2}
      age: {transform: bucket, width: 10}
      diagnosis: keep
    k_anonymity: {quasi_identifiers: [zip, age], k: 3, action: ACTION}
"""


@pytest.fixture
def patients(engine):
    engine.execute("CREATE SCHEMA raw")
    engine.execute("CREATE TABLE raw.t (zip VARCHAR, age INTEGER, diagnosis VARCHAR)")
    rows = [
        ("12345", 31, "a"),
        ("12999", 35, "b"),
        ("12000", 39, "c"),  # class (12, 30): 3
        ("12345", 41, "a"),
        ("12111", 48, "b"),  # class (12, 40): 2 -> suppressed
        ("99999", 70, "c"),  # class (99, 70): 1 -> suppressed
        (None, 50, "d"),
        (None, 55, "d"),
        (None, 59, "e"),
    ]  # NULL zip is a class: 3
    for r in rows:
        engine.execute("INSERT INTO raw.t VALUES (?, ?, ?)", r)
    return engine


def test_k_anonymity_suppresses_small_classes(tmp_path, duck, patients):
    plan = plan_of(tmp_path, KANON.replace("ACTION", "suppress"))
    create(plan, duck, patients)
    rows = patients.query("SELECT zip, age, diagnosis FROM anon.t ORDER BY diagnosis, age")
    assert sorted(rows, key=str) == sorted(
        [
            ("12", 30, "a"),
            ("12", 30, "b"),
            ("12", 30, "c"),
            (None, 50, "d"),
            (None, 50, "d"),
            (None, 50, "e"),
        ],
        key=str,
    )
    (r,) = report(plan, duck, patients)
    assert (r.source_rows, r.kept_rows, r.view_rows, r.suppressed) == (9, 9, 6, 3)
    assert r.rows_below_k == 3 and r.smallest_class == 3 and r.k_ok


def test_k_anonymity_fail_only_measures(tmp_path, duck, patients, cli):
    plan = plan_of(tmp_path, KANON.replace("ACTION", "fail"))
    create(plan, duck, patients)
    assert len(patients.query("SELECT * FROM anon.t")) == 9
    (r,) = report(plan, duck, patients)
    assert r.smallest_class == 1 and not r.k_ok and r.suppressed == 0
