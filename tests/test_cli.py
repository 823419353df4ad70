"""The command line: demo, explain, keys, apply, budget."""

from __future__ import annotations

import json

import duckdb


def test_demo_runs_end_to_end(cli):
    result = cli("demo", "--customers", "500", "--rows", "1")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "raw.customers → anon.customers, row 1" in out
    assert "mask_email" in out and "pseudonymize" in out
    assert "anon.customers" in out and "k=5: smallest class" in out and "ok" in out
    assert "Pseudonyms join" in out
    assert "Differentially private releases refreshed" in out
    assert "analytics.orders_by_status_year (noisy" in out
    assert "Traceback" not in out


def test_explain_json_is_the_plan(cli, workdir):
    result = cli("explain", "examples/retail/policy.yml", "--format", "json")
    assert result.exit_code == 0
    plan = json.loads(result.output)
    views = {v["name"]: v for v in plan["views"]}
    assert set(views) == {"customers", "orders", "web_sessions"}
    email = next(c for c in views["customers"]["columns"] if c["output"] == "email")
    assert email["transform"] == "mask_email" and email["privacy_class"] == "direct_identifier"
    assert views["web_sessions"]["sample"]["key"] == {"name": "sampling", "version": 1}


def test_explain_table_names_classes_and_rules(cli, workdir):
    result = cli("explain", "examples/retail/policy.yml")
    assert result.exit_code == 0
    for text in (
        "raw.customers → anon.customers",
        "direct id",
        "quasi-id",
        "sensitive",
        "key=customer@v1 length=16",
        "k-anonymity: k=5 over age_band, gender, zip, country",
        "sample: 0.25 of customer_id values",
        "raw.orders → analytics.orders_by_status_year",
        "release orders_by_status; by status, year",
        "groups: released when the noisy count of units exceeds 359",
        "groups: 4 public group(s), each released even when empty",
        "budget of retail: 2 release(s) spend ε=1.5 of 2 and δ=1e-06 of 1e-05 per refresh",
        # the reviewer is told what re-running an epoch does (before: "the same epoch gives the
        # same answer", true before issue 13's nonce and the opposite of what happens now)
        "every refresh, of any epoch, draws fresh noise and spends again",
        "biases counts and sums down — `sqlanon utility` measures it",
    ):
        assert text in " ".join(result.output.split()), text
    assert "same epoch gives the same answer" not in result.output


def test_keys_ddl_runs_on_duckdb(cli, workdir):
    result = cli("keys", "ddl", "examples/retail/policy.yml")
    assert result.exit_code == 0
    con = duckdb.connect()
    con.execute(result.output)
    cols = [r[0] for r in con.execute("DESCRIBE privacy.sqlanon_keys").fetchall()]
    assert cols == ["name", "version", "inner_pad", "outer_pad"]


APPLY_ADULT = (
    "apply",
    "examples/adult/policy.yml",
    "--db",
    ":memory:",
    "--csv",
    "raw.adult=examples/adult/adult.csv",
)


def test_apply_loads_csv_and_reports(cli, workdir):
    result = cli(*APPLY_ADULT)
    assert result.exit_code == 0, result.output
    assert "30162" in result.output and "255" in result.output and "29907" in result.output


def test_apply_exits_1_when_k_is_measured_and_not_met(cli, workdir):
    policy = workdir / "examples/adult/policy.yml"
    policy.write_text(policy.read_text().replace("action: suppress", "action: fail"))
    result = cli(*APPLY_ADULT)
    assert result.exit_code == 1
    assert "NOT MET" in result.output


def test_apply_with_keys_end_to_end(cli, workdir):
    db = str(workdir / "shop.duckdb")
    from sqlanon.demo.retail import generate, load
    from sqlanon.warehouse.duckdb import DuckDBEngine

    engine = DuckDBEngine(db)
    load(engine, generate(200))
    engine.close()
    for name in ("customer", "order", "session", "sampling", "noise"):
        r = cli(
            "keys",
            "load",
            "--db",
            db,
            "--name",
            name,
            "--from-env",
            "K",
            env={"K": (name * 8).encode().hex()},
        )
        assert r.exit_code == 0, r.output
    result = cli("apply", "examples/retail/policy.yml", "--db", db)
    assert result.exit_code == 0, result.output
    assert "2 release(s) not refreshed: pass --epoch N" in " ".join(result.output.split())
    con = duckdb.connect(db)
    rows = con.execute("SELECT customer_id, email FROM anon.customers LIMIT 1").fetchall()
    assert len(rows[0][0]) == 16 and "*" in rows[0][1]
    con.close()

    def budget():  # type: ignore[no-untyped-def]
        r = cli("budget", "examples/retail/policy.yml", "--db", db)
        return r.exit_code, " ".join(r.output.split())

    assert cli("apply", "examples/retail/policy.yml", "--db", db, "--epoch", "1").exit_code == 0
    code, out = budget()
    assert code == 0 and "1.5 / 2" in out and "OVER BUDGET" not in out
    # a second refresh of the same epoch would overspend it: refused, nothing written
    again = cli("apply", "examples/retail/policy.yml", "--db", db, "--epoch", "1")
    assert again.exit_code == 1
    assert "refresh refused" in again.output and "--allow-overspend" in again.output
    code, out = budget()
    assert code == 0 and "1.5 / 2" in out
    # allowed explicitly: recorded, and the epoch goes over its budget
    forced = ("apply", "examples/retail/policy.yml", "--db", db, "--epoch", "1")
    assert cli(*forced, "--allow-overspend").exit_code == 0
    code, out = budget()
    assert code == 1 and "customers_by_country ×2" in out and "3 / 2" in out
    assert "OVER BUDGET" in out


def test_database_errors_are_messages_not_tracebacks(cli, workdir):
    result = cli("apply", "examples/adult/policy.yml", "--db", ":memory:")
    assert result.exit_code == 2
    assert "table adult: raw.adult: the source relation is not there" in result.output
    assert "nothing was changed" in result.output
    assert "Traceback" not in result.output and "LINE " not in result.output


def test_apply_names_a_misspelled_column_and_warns_of_an_undeclared_type(cli, workdir):
    """Before: a misspelled column failed inside the engine (`Binder Error: ... _sqlanon_src`)
    with no policy context; a BIGINT key pseudonymized without `type:` passed silently."""
    import duckdb

    db = str(workdir / "t.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.t AS SELECT 42::BIGINT AS id, '555' AS phone")
    con.close()
    policy = workdir / "t.yml"
    policy.write_text(
        "sqlanon: 1\nname: t\nkeys: {table: privacy.keys}\ntables:\n  t:\n"
        "    source: raw.t\n    target: anon.t\n    columns:\n"
        "      id: {transform: pseudonymize, key: k}\n      phon: keep\n"
    )
    result = cli("apply", str(policy), "--db", db)
    assert result.exit_code == 2
    # located at the policy line that reads the column, with that line and a caret under it
    assert "t.yml:10:7: error: table t: raw.t.phon: the policy reads it" in result.output
    assert "          phon: keep\n          ^" in result.output
    assert "BIGINT read as text by pseudonymize: declare `type: integer`" in result.output
    assert "nothing was changed" in result.output

    # deploy checks the same before running the reviewed folder
    assert cli("compile", str(policy), "--out", str(workdir / "build")).exit_code == 0
    result = cli("deploy", str(workdir / "build"), "--db", db, "--policy", str(policy))
    assert result.exit_code == 2
    assert "t.yml:10:7: error: table t: raw.t.phon: the policy reads it" in result.output
    assert "nothing was changed" in result.output


def test_conformance_matrix(cli):
    result = cli("conformance", "--engine", "duckdb")
    assert result.exit_code == 0, result.output
    assert "Conformance: " in result.output
    for transform in ("pseudonymize", "mask_email", "truncate_date"):
        assert transform in result.output
    assert "FAIL" not in result.output and "failing" not in result.output


def test_help_renders_without_artefacts_and_lists_choices(cli):
    from sqlanon.cli.app import app, keys_app

    commands = [[c.name or c.callback.__name__] for c in app.registered_commands]
    commands += [["keys", c.name or c.callback.__name__] for c in keys_app.registered_commands]
    for args in [[], *commands]:
        result = cli(*args, "--help")
        assert result.exit_code == 0, args
        text = result.output
        assert "<bool>" not in text and "{paths}" not in text and "{" not in text, args
    compile_help = " ".join(cli("compile", "--help").output.split())
    for name in ("duckdb", "postgres", "bigquery", "snowflake", "spark"):
        assert name in compile_help
    assert cli("depoy").output.count("Did you mean") <= 1


def test_dialect_aliases(cli, workdir):
    result = cli("compile", "examples/retail/policy.yml", "--dialect", "postgresql", "--out", "pg")
    assert result.exit_code == 0, result.output
    assert "WITH (security_barrier = true)" in (workdir / "pg/views/anon.customers.sql").read_text()


def test_piped_tables_print_whole_values(cli, workdir):
    """Before: a piped table was cut at ~120 characters (`o_ordersta…`)."""
    long_name = "a_column_name_long_enough_to_be_cut_by_a_terminal_width_of_one_hundred_twenty"
    policy = workdir / "long.yml"
    policy.write_text(
        "sqlanon: 1\nname: long\ntables:\n  t:\n    source: raw.t\n    target: anon.t\n"
        f"    columns:\n      {long_name}: {{transform: prefix, length: 3}}\n"
        f"      {long_name}_2: {{transform: bucket, width: 10, min: 0, max: 100}}\n"
    )
    for args in (("explain", str(policy)), ("budget", str(policy)), ("validate", str(policy))):
        result = cli(*args, env={"COLUMNS": ""})
        assert "…" not in result.output, args
    assert long_name + "_2" in cli("explain", str(policy), env={"COLUMNS": ""}).output


def test_keys_generate_status_and_read_only_commands(cli, workdir):
    """keys: which the policy needs, generated into the warehouse (never through a shell
    variable), which are loaded; read-only commands refuse a mistyped database path instead
    of creating an empty database; a budget before any refresh is `nothing spent`."""
    db = str(workdir / "k.duckdb")
    policy = "examples/retail/policy.yml"
    assert cli("keys", "status", policy, "--db", db).exit_code == 2  # no database yet
    ddl = cli("keys", "ddl", policy).output
    assert "needs key 'noise' version 1 (release noise)" in ddl
    for name in ("customer", "order", "session", "sampling"):
        r = cli("keys", "load", "--db", db, "--policy", policy, "--name", name, "--generate")
        assert r.exit_code == 0, r.output
    status = cli("keys", "status", policy, "--db", db)
    assert status.exit_code == 1
    text = " ".join(status.output.replace("│", " ").split())
    assert "noise 1 release noise missing" in text and "customer 1 pseudonyms loaded" in text
    assert "privacy.sqlanon_keys" in text
    assert cli("keys", "load", "--db", db, "--policy", policy, "--name", "noise", "--generate")
    assert cli("keys", "status", policy, "--db", db).exit_code == 0
    assert "nothing spent" in cli("budget", policy, "--db", db).output
    typo = cli("drift", policy, "--db", str(workdir / "k.duckbd"))
    assert typo.exit_code == 2 and "no database at" in typo.output
    assert not (workdir / "k.duckbd").exists()
