"""Sources written as SQL (docs/sources.md): the allowed subset, what each dialect gets, and
the catalog checks that find a misspelled column in a query before anything runs. The
engines' agreement on a real query is tests/test_tpch.py."""

from __future__ import annotations

import pytest

from sqlanon.measure import drift
from sqlanon.plan.build import build_plan
from sqlanon.plan.model import SourceQuery
from sqlanon.plan.query import QueryError, describe_query, query_lineage
from sqlanon.policy.load import load_policies
from sqlanon.review.diff import compare
from sqlanon.sql import dialect
from sqlanon.sql.query import query_sql
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.sources import SourceProblem, source_columns

# each construct refused, with a word of the reason the user reads
REFUSED = [
    ("SELECT t.a / t.b AS x FROM s.t", "divides integers differently"),
    ("SELECT t.a % 2 AS x FROM s.t", "sign"),
    ("SELECT * FROM s.t", "never named"),
    ("SELECT a FROM t", "[catalog.]schema.table"),
    ("SELECT COUNT(*) AS n FROM s.t", "what one source row is"),
    ("SELECT a FROM s.t GROUP BY a", "what one source row is"),
    ("SELECT DISTINCT a FROM s.t", "what one source row is"),
    ("SELECT a FROM s.t ORDER BY a", "ORDER BY"),
    ("SELECT a FROM s.t LIMIT 3", "LIMIT"),
    ("SELECT a FROM s.t UNION SELECT a FROM s.u", "not UNION"),
    ("WITH q AS (SELECT a FROM s.t) SELECT a FROM q", "WITH"),
    ("SELECT a FROM (SELECT a FROM s.t) AS q", "subqueries"),
    ("SELECT a FROM s.t WHERE a IN (SELECT b FROM s.u)", "subqueries"),
    ("DELETE FROM s.t", "not DELETE"),
    ("DROP TABLE s.t", "not DROP"),
    ("SELECT a FROM s.t; SELECT b FROM s.u", "not 2"),
    ("SELECT t.a FROM s.t CROSS JOIN s.u", "CROSS JOIN"),
    ("SELECT t.a FROM s.t, s.u", "cross join"),
    ("SELECT t.a FROM s.t FULL JOIN s.u ON t.a = u.a", "FULL JOIN"),
    ("SELECT t.a FROM s.t JOIN s.u USING (a)", "USING"),
    ("SELECT t.a FROM s.t RIGHT JOIN s.u ON t.a = u.a", "RIGHT JOIN"),
    ("SELECT t.a FROM s.t NATURAL JOIN s.u", "NATURAL"),
    ("SELECT a + 1 FROM s.t", "AS name"),
    ("SELECT UPPER(a) AS a FROM s.t", "functions"),
    ("SELECT CAST(a AS INT) AS a FROM s.t", "casts"),
    ("SELECT a FROM s.t WHERE a < 'x'", "collation"),
    ("SELECT a FROM s.t WHERE a LIKE 'x%'", "LIKE"),
    ("SELECT 0.5 * a AS a FROM s.t", "FLOAT64"),
    ("SELECT a, a FROM s.t", "two columns named"),
    ("SELECT a FROM s.t JOIN s.u ON t.k = u.k", "not qualified"),
    ("SELECT 1 AS one", "FROM"),
    ("SELECT t.a FROM s.t WHERE t.a = 1 OR (SELECT 1) = 1", "subqueries"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_outside_the_subset_is_refused_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(QueryError) as info:
        describe_query(sql)
    assert reason in str(info.value), str(info.value)


def test_the_subset_reads_what_it_names() -> None:
    q = describe_query(
        """SELECT o.id, c.segment AS seg, o.price * (1 - o.discount) AS net, -o.qty AS back,
                  CASE WHEN o.status IN ('F', 'O') THEN 'done' ELSE NULL END AS state,
                  COALESCE(c.region, 'none') AS region
           FROM raw.orders AS o
           LEFT OUTER JOIN shop.raw.customers AS c ON c.id = o.customer_id AND c.active = TRUE
           INNER JOIN raw.days AS d ON d.day = o.day
           WHERE o.day >= DATE '2024-01-01' AND o.qty BETWEEN 1 AND 9 AND NOT o.test
             AND c.id IS NOT NULL AND o.status <> 'X'"""
    )
    assert q.reads == (("raw", "days"), ("raw", "orders"), ("shop", "raw", "customers"))
    assert q.columns == ("id", "seg", "net", "back", "state", "region")


def test_lineage_follows_each_output_to_its_relation_columns() -> None:
    lineage = query_lineage(
        "SELECT o.id, o.price * (1 - o.discount) AS net, c.segment FROM raw.orders AS o "
        "JOIN raw.customers AS c ON c.id = o.customer_id WHERE c.active = TRUE",
        "postgres",
    )
    orders, customers = ("raw", "orders"), ("raw", "customers")
    assert lineage == {
        "id": [(orders, "id")],
        "net": [(orders, "discount"), (orders, "price")],
        "segment": [(customers, "segment")],
    }


HOSTILE = 'SELECT t."we""ird", t."*/ DROP" AS "x\'y" FROM "r""aw".t WHERE t.a = \'it\'\'s\''


@pytest.mark.parametrize("name", ["duckdb", "postgres", "snowflake", "bigquery", "spark"])
def test_hostile_names_stay_names_in_every_dialect(name: str) -> None:
    """Quotes in names and literals are escaped by the generator: the query cannot end early."""
    import sqlglot

    d = dialect.get(name)
    parsed = describe_query(HOSTILE)
    text = query_sql(SourceQuery(HOSTILE, "postgres", parsed.reads, parsed.columns), d)
    again = sqlglot.parse_one(text, read=name)
    assert [c.name for c in again.find_all(sqlglot.exp.Column)][:2] == ['we"ird', "*/ DROP"]
    assert again.find(sqlglot.exp.Literal).this == "it's"
    assert len(sqlglot.parse(text, read=name)) == 1


POLICY = """
sqlanon: 1
name: shop
keys: {table: privacy.keys}
tables:
  orders:
    source:
      sql: |
        SELECT o.id, o.total, c.segment
        FROM raw.orders AS o JOIN raw.customers AS c ON c.id = o.{customer}
    target: anon.orders
    columns:
      id: keep
      total: keep
      segment: keep
"""


def _plan(tmp_path, customer: str = "customer_id"):  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.yml"
    path.write_text(POLICY.replace("{customer}", customer))
    return build_plan(load_policies([str(path)]))


@pytest.fixture
def shop(tmp_path):  # type: ignore[no-untyped-def]
    e = DuckDBEngine(str(tmp_path / "shop.duckdb"))
    e.execute("CREATE SCHEMA raw")
    e.execute("CREATE TABLE raw.orders (id INTEGER, total DECIMAL(10, 2), customer_id INTEGER)")
    e.execute("CREATE TABLE raw.customers (id INTEGER, segment VARCHAR)")
    yield e
    e.close()


def test_a_query_sources_columns_are_typed_from_the_catalog(tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    (view,) = _plan(tmp_path).views
    assert source_columns(shop, view.source) == [
        ("id", "INT"),
        ("total", "DECIMAL(10, 2)"),
        ("segment", "TEXT"),
    ]
    assert drift.check(_plan(tmp_path), shop) == []


def test_a_misspelled_column_in_a_query_is_found_before_anything_runs(tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tmp_path, customer="custome_id")
    with pytest.raises(SourceProblem, match=r"raw\.orders\.custome_id"):
        source_columns(shop, plan.views[0].source)
    (finding,) = drift.check(plan, shop)
    assert (finding.kind, finding.relation, finding.column) == (
        "missing_column",
        "raw.orders",
        "custome_id",
    )


def test_a_missing_relation_of_a_query_is_a_missing_source(tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    shop.execute("DROP TABLE raw.customers")
    (finding,) = drift.check(_plan(tmp_path), shop)
    assert (finding.kind, finding.relation) == ("missing_source", "raw.customers")


def test_apply_stops_at_the_policy_line(tmp_path, shop, cli) -> None:  # type: ignore[no-untyped-def]
    shop.close()
    path = tmp_path / "policy.yml"
    path.write_text(POLICY.replace("{customer}", "custome_id"))
    result = cli("apply", str(path), "--db", str(tmp_path / "shop.duckdb"))
    assert result.exit_code == 2
    assert "policy.yml:6:3: error: table orders" in result.output  # the table's line
    assert "raw.orders.custome_id: the query reads it; it is not there" in result.output
    assert "nothing was changed" in result.output


def test_an_edited_query_is_a_reviewed_change(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = _plan(tmp_path)
    path = tmp_path / "policy.yml"
    path.write_text(
        POLICY.replace("{customer}", "customer_id").replace(
            "o.customer_id", "o.customer_id WHERE o.total > 0"
        )
    )
    new = build_plan(load_policies([str(path)]))
    (change,) = compare(old, new)
    assert (change.verdict, change.change) == (
        "neutral",
        "source query over [raw.customers, raw.orders] edited",
    )


def test_a_duckdb_file_named_like_a_schema_gets_a_hint(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    """Seen with TPC-H: `--db tpch.duckdb --csv tpch.customer=…` is ambiguous to DuckDB (the
    file is a catalog named `tpch`); the error says so instead of DuckDB's words alone."""
    (tmp_path / "orders.csv").write_text("id,total,customer_id\n1,2.50,1\n")
    (tmp_path / "customers.csv").write_text("id,segment\n1,retail\n")
    path = tmp_path / "policy.yml"
    path.write_text(POLICY.replace("{customer}", "customer_id"))
    result = cli(
        "apply",
        str(path),
        "--db",
        str(tmp_path / "raw.duckdb"),
        "--csv",
        f"raw.orders={tmp_path / 'orders.csv'}",
        "--csv",
        f"raw.customers={tmp_path / 'customers.csv'}",
    )
    assert result.exit_code != 0
    assert "hint: a DuckDB file is a catalog named after the file" in result.output


def _decimals(tmp_path):  # type: ignore[no-untyped-def]
    """raw.m: a wide decimal (sqlanon's own `decimal` type on DuckDB) and TPC-H's price."""
    e = DuckDBEngine(str(tmp_path / "d.duckdb"))
    e.execute("CREATE SCHEMA raw")
    e.execute("CREATE TABLE raw.m (id INTEGER, wide DECIMAL(38, 9), price DECIMAL(15, 2))")
    return e


def test_decimal_arithmetic_some_engine_would_round_is_a_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Measured (docs/sources.md): DECIMAL(38, 9) + DECIMAL(38, 9) is rounded to 8 decimals by
    Spark, a product of two to 6 by Spark and 9 by BigQuery; DECIMAL(15, 2) products (TPC-H's
    price × discount) are exact everywhere."""
    e = _decimals(tmp_path)
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "sqlanon: 1\nname: m\ntables:\n  m:\n    source:\n      sql: SELECT t.id, "
        "t.price * (1 - t.price) AS net, t.wide + t.wide AS twice FROM raw.m AS t\n"
        "    target: anon.m\n    columns: {id: keep, net: keep, twice: keep}\n"
    )
    findings = drift.check(build_plan(load_policies([str(policy)])), e)
    e.close()
    (finding,) = findings
    assert (finding.severity, finding.kind) == ("warning", "decimal_rounding")
    assert '"t"."wide" + "t"."wide"' in finding.detail and "39 digits" in finding.detail


def test_a_measure_expression_some_engine_would_round_is_a_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    e = _decimals(tmp_path)
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "sqlanon: 1\nname: m\nkeys: {table: privacy.keys}\nbudget: {epsilon: 2}\n"
        "releases:\n  r:\n    source: raw.m\n    target: out.r\n    privacy_unit: id\n"
        "    epsilon: 1\n    groups: {public: []}\n    measures:\n"
        "      net: {agg: sum, column: price * (1 - price), clamp: [0, 10]}\n"
        "      big: {agg: sum, column: wide * wide, clamp: [0, 10]}\n"
    )
    findings = drift.check(build_plan(load_policies([str(policy)])), e)
    e.close()
    (finding,) = findings
    assert (finding.severity, finding.kind, finding.object) == (
        "warning",
        "decimal_rounding",
        "release r",
    )
    assert finding.detail.startswith("measure big: ") and "77 digits, 18 decimals" in finding.detail
