"""`sqlanon compile --format dbt`: the generated project builds with dbt-core + dbt-duckdb and
computes the same rows as the plain SQL output; Jinja in policy text stays text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import REPO, engine_unavailable, install_retail, release_rows, require_module

from sqlanon.output import dbt
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.review.conformance import canonical_value
from sqlanon.sql import dialect
from sqlanon.warehouse.apply import create, refresh
from sqlanon.warehouse.duckdb import DuckDBEngine

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt")]

EPOCH_ERROR = "sqlanon: set the epoch of this refresh"


@pytest.fixture(scope="module")
def dbt_runner():  # type: ignore[no-untyped-def]
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        engine_unavailable("dbt", f"dbt-core/dbt-duckdb are not installed ({exc})")
    return dbtRunner


def write_project(plan, folder: Path, db: Path) -> Path:  # type: ignore[no-untyped-def]
    for a in dbt.build(plan, dialect.get("duckdb")):
        target = folder / a.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(a.content)
    (folder / "profiles.yml").write_text(
        "sqlanon:\n  target: test\n  outputs:\n    test:\n"
        f"      type: duckdb\n      path: {json.dumps(str(db))}\n      threads: 2\n"
    )
    return folder


def run_dbt(runner, project: Path, *args: str):  # type: ignore[no-untyped-def]
    """One dbt command in `project`; returns (success, the text of its log)."""
    log = project / "logs" / "dbt.log"
    if log.exists():
        log.unlink()
    cwd = os.getcwd()
    os.chdir(project)
    try:
        result = runner().invoke(
            [
                *args,
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--no-use-colors",
            ]
        )
    finally:
        os.chdir(cwd)
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return result.success, text + "\n" + repr(result.exception)


def rows(engine, relation: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted(engine.query(f"SELECT * FROM {relation}"), key=repr)


def test_dbt_build_matches_the_sql_output(tmp_path: Path, dbt_runner) -> None:  # type: ignore[no-untyped-def]
    duck = dialect.get("duckdb")
    # the same generated data and keys in two databases: one built by dbt, one by the SQL output
    by_dbt, by_sql = tmp_path / "dbt.duckdb", tmp_path / "sql.duckdb"
    for path in (by_dbt, by_sql):
        e = DuckDBEngine(str(path))
        plan = install_retail(e, 1500, seed=11)
        if path == by_sql:
            create(plan, duck, e)
            refresh(plan, duck, e, epoch=1)  # the release tables, as the SQL output makes them
        e.close()
    project = write_project(plan, tmp_path / "project", by_dbt)

    ok, log = run_dbt(dbt_runner, project, "build")
    assert not ok and EPOCH_ERROR in log, "a release model must refuse to run without an epoch"
    ok, log = run_dbt(dbt_runner, project, "build", "--vars", "sqlanon_epoch: 3")
    assert ok, log
    assert "PASS anon__customers__k_anonymity" in log
    # a second refresh of epoch 3 would overspend it: the pre-hook refuses, nothing changes
    before = DuckDBEngine(str(by_dbt))
    try:
        kept = {r.name: rows(before, duck.relation(r.target).text) for r in plan.releases}
    finally:
        before.close()
    ok, log = run_dbt(dbt_runner, project, "build", "--vars", "sqlanon_epoch: 3")
    assert not ok and "refresh refused" in log
    ok, log = run_dbt(dbt_runner, project, "build", "--vars", "sqlanon_epoch: 4")
    assert ok, log

    got, want = DuckDBEngine(str(by_dbt)), DuckDBEngine(str(by_sql))
    try:
        for v in plan.views:
            relation = duck.relation(v.target).text
            assert rows(got, relation) == rows(want, relation), v.name
            assert len(rows(got, relation)) > 0
        ledger = duck.relation(plan.ledgers[0]).text
        for r in plan.releases:
            relation = duck.relation(r.target).text
            assert [x for x in rows(got, relation) if x[0] == 3] == kept[r.name], r.name
            epochs = got.query(f'SELECT DISTINCT "epoch" FROM {relation} ORDER BY 1')
            assert epochs == [(3,), (4,)]
            # the same table either way: one made by `apply` takes dbt's refreshes (before, dbt
            # typed the epoch INTEGER and apply BIGINT)
            assert got.columns(r.target) == want.columns(r.target), r.name
            # each epoch's rows are what the SQL output's query draws for that refresh's nonce
            for epoch, nonce in got.query(
                f'SELECT "epoch", "nonce" FROM {ledger} WHERE "target" = ? ORDER BY 1',
                [r.target_name],
            ):
                stored = got.query(f'SELECT * FROM {relation} WHERE "epoch" = {epoch}')
                assert sorted(tuple(canonical_value(v) for v in x) for x in stored) == (
                    release_rows(want, r, epoch, nonce)
                ), (r.name, epoch)
        spent = got.query(
            f'SELECT "epoch", "release", COUNT(*), SUM("epsilon") FROM {ledger} '
            "GROUP BY ALL ORDER BY 1, 2"
        )
        by_release = {r.name: float(r.epsilon) for r in plan.releases}
        assert [(e, name, n) for e, name, n, _ in spent] == [
            (epoch, name, 1) for epoch in (3, 4) for name in sorted(by_release)
        ]
        assert all(abs(eps - n * by_release[name]) < 1e-12 for _, name, n, eps in spent)
    finally:
        got.close()
        want.close()

    # dbt docs: lineage from the sources (and the key relation) to each model, sqlanon's column
    # metadata in the docs
    ok, log = run_dbt(dbt_runner, project, "docs", "generate", "--vars", "sqlanon_epoch: 4")
    assert ok, log
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    catalog = json.loads((project / "target" / "catalog.json").read_text())
    customers = manifest["nodes"]["model.sqlanon.anon__customers"]
    assert sorted(customers["depends_on"]["nodes"]) == [
        "source.sqlanon.privacy.sqlanon_keys",
        "source.sqlanon.raw.customers",
    ]
    email = customers["columns"]["email"]
    assert email["meta"]["sqlanon"]["transform"] == "mask_email"
    assert "privacy class direct_identifier" in email["description"]
    assert "full_name" not in customers["columns"]
    assert customers["meta"]["sqlanon"]["k_anonymity"]["k"] == 5
    assert "model.sqlanon.anon__customers" in catalog["nodes"]
    release = manifest["nodes"]["model.sqlanon.analytics__orders_by_status_year"]
    assert release["config"]["materialized"] == "incremental"
    assert "source.sqlanon.raw.orders" in release["depends_on"]["nodes"]


HOSTILE = """
sqlanon: 1
name: braces
keys: {table: privacy.sqlanon_keys}
tables:
  notes:
    source: raw.notes
    target: 'anon.v{{ 7*7 }}'
    description: "{% if true %}runs{% endif %} {# a comment #}"
    columns:
      id: {transform: pseudonymize, key: person, length: 16, type: integer}
      '{{ body }}': keep
      stamp: {column: id, transform: constant, value: "{{ run_query('DROP TABLE raw.notes') }}"}
      tag: {column: id, transform: constant, value: "{% raw %}x{% endraw %}{#"}
"""


def test_jinja_in_policy_text_stays_text(tmp_path: Path, dbt_runner) -> None:  # type: ignore[no-untyped-def]
    duck = dialect.get("duckdb")
    (tmp_path / "policy.yml").write_text(HOSTILE)
    plan = build_plan(load_policies([str(tmp_path / "policy.yml")]))
    by_dbt, by_sql = tmp_path / "dbt.duckdb", tmp_path / "sql.duckdb"
    for path in (by_dbt, by_sql):
        e = DuckDBEngine(str(path))
        e.execute("CREATE SCHEMA raw")
        e.execute('CREATE TABLE raw.notes (id INTEGER, "{{ body }}" VARCHAR)')
        e.execute("INSERT INTO raw.notes VALUES (1, '{{ a }}'), (2, '{% b %}')")
        e.execute("CREATE SCHEMA privacy")
        from sqlanon.sql.views import key_table_statements
        from sqlanon.warehouse.keys import store

        for s in key_table_statements(("privacy", "sqlanon_keys"), duck):
            e.execute(s.text)
        store(e, duck, ("privacy", "sqlanon_keys"), "person", 1, b"k" * 32)
        if path == by_sql:
            create(plan, duck, e)
            refresh(plan, duck, e, epoch=1)  # the release tables, as the SQL output makes them
        e.close()
    project = write_project(plan, tmp_path / "project", by_dbt)
    ok, log = run_dbt(dbt_runner, project, "build")
    assert ok, log

    got, want = DuckDBEngine(str(by_dbt)), DuckDBEngine(str(by_sql))
    try:
        relation = duck.relation(("anon", "v{{ 7*7 }}")).text
        built = rows(got, relation)
        assert built == rows(want, relation)
        assert {r[2] for r in built} == {"{{ run_query('DROP TABLE raw.notes') }}"}
        assert {r[3] for r in built} == {"{% raw %}x{% endraw %}{#"}
        assert {r[1] for r in built} == {"{{ a }}", "{% b %}"}
        assert got.query("SELECT COUNT(*) FROM raw.notes") == [(2,)]
    finally:
        got.close()
        want.close()
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    (node,) = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert node["alias"] == "v{{ 7*7 }}"
    # dbt renders descriptions and meta too: they read as the policy wrote them
    assert node["description"].startswith("{% if true %}runs{% endif %} {# a comment #}\n")
    stamp = node["columns"]["stamp"]["meta"]["sqlanon"]["params"]["value"]
    assert stamp == "{{ run_query('DROP TABLE raw.notes') }}"
    assert "{{ body }}" in node["columns"]


def test_check_and_extra_files(tmp_path: Path) -> None:
    """The dbt output is written and checked like the SQL output: a stale file is found, a
    file sqlanon did not write (the user's profiles.yml) is kept."""
    from typer.testing import CliRunner

    from sqlanon.cli.app import app

    policy = str(REPO / "examples/retail/policy.yml")
    out = tmp_path / "project"
    cli = CliRunner()
    args = ["compile", policy, "--format", "dbt", "--out", str(out)]
    assert cli.invoke(app, args).exit_code == 0
    (out / "profiles.yml").write_text("mine: {}\n")
    assert cli.invoke(app, [*args, "--check"]).exit_code == 0
    schema = out / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("mask_email", "keep"))
    result = cli.invoke(app, [*args, "--check"])
    assert result.exit_code == 1 and "stale" in result.output + str(result.stderr_bytes)
    assert cli.invoke(app, args).exit_code == 0
    assert (out / "profiles.yml").read_text() == "mine: {}\n"
    assert cli.invoke(app, [*args, "--check"]).exit_code == 0


def test_dbt_build_on_postgres(tmp_path: Path, dbt_runner, live) -> None:  # type: ignore[no-untyped-def]
    """The PostgreSQL project on the real server: views get security_barrier (a post-hook, as
    dbt's view materialization has no such option), the role reads what the policy grants
    and the rows equal the SQL output's queries."""
    require_module("dbt.adapters.postgres", "dbt-postgres is in the test extra")
    from sqlanon.sql.releases import release_query
    from sqlanon.sql.views import view_query

    engine = live.get("postgres")
    d = dialect.get("postgres")
    plan = install_retail(engine, 400, seed=5)
    project = tmp_path / "project"
    for a in dbt.build(plan, d):
        (project / a.path).parent.mkdir(parents=True, exist_ok=True)
        (project / a.path).write_bytes(a.content)
    info = engine.conn.info
    (project / "profiles.yml").write_text(
        "sqlanon:\n  target: test\n  outputs:\n    test:\n      type: postgres\n"
        f"      host: {info.host}\n      port: {info.port}\n      user: {info.user}\n"
        f"      password: ''\n      dbname: {info.dbname}\n      schema: public\n"
        "      threads: 1\n"
    )
    ok, log = run_dbt(dbt_runner, project, "build", "--vars", "sqlanon_epoch: 2")
    assert ok, log

    for v in plan.views:
        relation = d.relation(v.target).text
        options = engine.query(
            "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            v.target,
        )
        assert options == [(["security_barrier=true"],)], v.name
        assert rows(engine, relation) == sorted(engine.query(view_query(v, d).text), key=repr)
    for r in plan.releases:
        relation = d.relation(r.target).text
        want = engine.query(release_query(r, d, d.number(2)).text)
        assert rows(engine, relation) == sorted(want, key=repr), r.name
    engine.execute("SET ROLE analyst")
    try:
        # every object is readable by the role; 400 customers are too few for the thresholded
        # release's groups (~360 units each), so only the others must hold rows
        for target, filled in [(v.target, True) for v in plan.views] + [
            (r.target, r.public_groups is not None) for r in plan.releases
        ]:
            count = engine.query(f"SELECT COUNT(*) FROM {d.relation(target).text}")[0][0]
            assert count > 0 or not filled, target
    finally:
        engine.execute("RESET ROLE")


def many_sources(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Twelve sources: more references than one digit can number."""
    tables = "".join(
        f"  t{i}:\n    source: raw.t{i}\n    target: anon.t{i}\n    columns: {{id: keep}}\n"
        for i in range(12)
    )
    (tmp_path / "many.yml").write_text(f"sqlanon: 1\nname: many\ntables:\n{tables}")
    return build_plan(load_policies([str(tmp_path / "many.yml")]))


@pytest.mark.parametrize("example", ["retail", "tpch", "many", "adult/synthetic"])
@pytest.mark.parametrize("name", dialect.available())
def test_models_render_to_the_sql_outputs_queries(name: str, example: str, tmp_path: Path) -> None:
    """Every dialect's models, rendered by Jinja with source() and ref() resolved as dbt would
    (to the policy's relations), are exactly the queries of the plain SQL output; the config
    block places each model where the SQL output puts it."""
    import jinja2

    from sqlanon.sql.releases import ledger_insert, release_query
    from sqlanon.sql.synthetic import synthetic_query
    from sqlanon.sql.views import view_query

    d = dialect.get(name)
    if example == "many":
        plan = many_sources(tmp_path)
    elif example == "adult/synthetic":
        plan = build_plan(load_policies([str(REPO / "examples/adult/synthetic.yml")]))
    else:  # tpch: sources written as SQL read their relations through source() too
        plan = build_plan(load_policies([str(REPO / f"examples/{example}/policy.yml")]))
    objects = (*plan.views, *plan.releases, *plan.synthetic)
    by_ref = {dbt.model_name(o.target): o.target for o in objects}
    by_source = {dbt._source_ref(p): p for p in (*plan.sources, *plan.key_tables)}
    configs: list[dict] = []
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals.update(
        config=lambda **kw: configs.append(kw) or "",
        source=lambda group, table: d.relation(by_source[(group, table)]).text,
        ref=lambda model: d.relation(by_ref[model]).text,
        sqlanon_epoch=lambda: "7",
    )
    files = {a.path: a.content.decode() for a in dbt.build(plan, d)}

    def body(path: str) -> str:
        configs.clear()
        rendered = env.from_string(files[path]).render()
        return rendered.split("\n\n", 2)[2].strip()  # after the header and the config block

    for v in plan.views:
        assert body(f"models/{dbt.model_name(v.target)}.sql") == view_query(v, d).text
        (config,) = configs
        assert config["alias"] == d.stored_name(v.target[-1])
        assert config["schema"] == d.stored_name(v.target[-2])
        if d.features.grants and v.grants:
            assert any("GRANT USAGE" in h for h in config["post_hook"])
    for r in plan.releases:
        epoch = d.prim("cast", d.number(7), to="integer")  # as dbt's models type it
        want = release_query(r, d, epoch).text
        assert body(f"models/{dbt.model_name(r.target)}.sql") == want
        (config,) = configs
        assert config["materialized"] in ("incremental", "table")
        ledger = env.from_string(config["pre_hook"][0]).render()
        assert ledger == ledger_insert(r, d, epoch).text
    for t in plan.synthetic:
        epoch = d.prim("cast", d.number(7), to="integer")
        assert body(f"models/{dbt.model_name(t.target)}.sql") == synthetic_query(t, d, epoch).text
        (config,) = configs
        ledger = env.from_string(config["pre_hook"][0]).render()
        assert ledger == ledger_insert(t, d, epoch).text


def test_what_dbt_writes_is_ignored_and_kept(tmp_path: Path) -> None:
    """Before: after `dbt build` in the generated folder, `compile --format dbt --check` listed
    dbt's target/ as extra files (compiled models carry sqlanon's header), and no .gitignore
    kept them out of the warehouse repo."""
    from sqlanon import api
    from sqlanon.output.files import MARKER

    plan = api.plan([REPO / "examples/retail/policy.yml"])
    out = tmp_path / "dbt"
    api.write(plan, out, "duckdb", format="dbt")
    assert (out / ".gitignore").read_text().splitlines()[1:] == [
        "target/",
        "logs/",
        "dbt_packages/",
    ]
    compiled = out / "target" / "run" / "anon__orders.sql"
    compiled.parent.mkdir(parents=True)
    compiled.write_text(f"{MARKER} 0.1.0\nselect 1\n")
    (out / "logs").mkdir()
    (out / "logs" / "dbt.log").write_text("log\n")
    assert api.check(plan, out, "duckdb", format="dbt").ok
    (out / "models" / "anon__orders.sql").write_text("-- edited\n")
    report = api.write(plan, out, "duckdb", format="dbt")
    assert report.stale == ["models/anon__orders.sql"] and not report.extra
    assert compiled.exists() and (out / "logs" / "dbt.log").exists(), "dbt's files are kept"
