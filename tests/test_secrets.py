"""A planted key is scanned for, in every form, in everything sqlanon writes or prints."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlanon.demo.retail import generate, load
from sqlanon.warehouse.duckdb import DuckDBEngine
from sqlanon.warehouse.keys import pads

KEY = b"PLANTED-sqlanon-KEY:" + bytes(range(200, 232))
RETAIL = "examples/retail/policy.yml"
NAMES = ("customer", "order", "session", "sampling", "noise")
# one secret per key name (a key has one purpose: `keys load` refuses a secret twice)
PLANTED = {name: KEY + bytes([i]) for i, name in enumerate(NAMES)}


def forms(secret: bytes) -> list[bytes]:
    inner, outer = pads(secret)
    out = []
    for b in (secret, inner, outer):
        out += [
            b,
            b.hex().encode(),
            b.hex().upper().encode(),
            base64.b64encode(b),
            b[:24],
            b[:24].hex().encode(),
        ]
    return out


def assert_clean(blob: bytes, where: str) -> None:
    for secret in (KEY, *PLANTED.values()):
        for form in forms(secret):
            assert form not in blob, f"key material found in {where}"


def test_the_key_appears_in_no_output_message_or_file(workdir, cli):
    env = {"SQLANON_TEST_KEY": KEY.hex()}
    env.update({f"SQLANON_KEY_{name.upper()}": secret.hex() for name, secret in PLANTED.items()})
    db = str(workdir / "w.duckdb")
    transcripts = []
    for name in NAMES:
        variable = f"SQLANON_KEY_{name.upper()}"
        r = cli("keys", "load", "--db", db, "--name", name, "--from-env", variable, env=env)
        assert r.exit_code == 0, r.output
        transcripts.append(r.output)
    # errors that handle the key: a duplicate, a wrong encoding, a short key, a file
    (workdir / "key.txt").write_text(KEY.hex())
    for args in (
        ("--name", "customer", "--from-env", "SQLANON_KEY_CUSTOMER"),
        ("--name", "x", "--from-env", "BAD", "--encoding", "base64"),
        ("--name", "x", "--from-file", "missing.txt"),
        ("--name", "x", "--from-env", "SHORT"),
    ):
        r = cli(
            "keys",
            "load",
            "--db",
            db,
            *args,
            env={**env, "SHORT": KEY[:8].hex(), "BAD": KEY.hex() + "!"},
        )
        assert r.exit_code == 2
        transcripts.append(r.output)
    assert "already exists" in transcripts[5] and "not valid base64" in transcripts[6]
    assert "cannot read file missing.txt" in transcripts[7]
    assert "at least 16 are required" in transcripts[8]
    engine = DuckDBEngine(db)
    load(engine, generate(200))
    engine.close()
    for args in (
        ("compile", RETAIL, "--out", "out"),
        ("compile", RETAIL, "--out", "out", "--check"),
        ("compile", RETAIL, "--out", "out-all", "--dialect", "all"),
        ("compile", RETAIL, "--out", "out-dbt", "--dialect", "all", "--format", "dbt"),
        ("explain", RETAIL),
        ("explain", RETAIL, "--format", "json"),
        ("explain", RETAIL, "--format", "markdown"),
        ("explain", RETAIL, "--format", "openlineage"),
        ("diff", RETAIL, RETAIL, "--format", "markdown", "--dialect", "all"),
        ("drift", RETAIL, "--db", db),
        ("validate", RETAIL),
        ("keys", "ddl", RETAIL),
        ("apply", RETAIL, "--db", db, "--epoch", "3"),  # views and DP releases, keys in use
        ("budget", RETAIL, "--db", db),
    ):
        r = cli(*args, env=env)
        assert r.exit_code == 0, r.output
        transcripts.append(r.output)
    for args in (  # measurements: a declared check may fail on this small sample (exit 1)
        ("risk", RETAIL, "--db", db),
        ("utility", RETAIL, "--db", db, "--format", "json"),
        ("utility", RETAIL, "--db", db, "--html", "report.html"),
    ):
        r = cli(*args, env=env)
        assert r.exit_code in (0, 1), r.output
        transcripts.append(r.output)
    assert (workdir / "report.html").stat().st_size > 0  # scanned with the other files below
    for i, text in enumerate(transcripts):
        assert_clean(text.encode(), f"command output #{i}")
    engine = DuckDBEngine(db)  # what the views and releases hold, the ledger included
    tables = engine.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE NOT (table_schema = 'privacy' AND table_name = 'sqlanon_keys')"
    )
    assert ("analytics", "orders_by_status_year") in tables and len(tables) >= 8
    for schema, table in tables:
        for row in engine.query(f'SELECT * FROM "{schema}"."{table}"'):
            for v in row:
                blob = v if isinstance(v, bytes) else str(v).encode()
                assert_clean(blob, f"{schema}.{table}")
    engine.close()
    files = [
        p
        for p in workdir.rglob("*")
        if p.is_file()
        and p.suffix != ".duckdb"
        and p.name not in ("key.txt",)
        and "wal" not in p.suffix
    ]
    assert any(p.name == "manifest.json" for p in files)
    assert any(p.name == "schema.yml" for p in files)  # the dbt projects
    assert sum(p.suffix == ".sql" for p in files) >= 5
    for p in files:
        assert_clean(p.read_bytes(), str(p.relative_to(workdir)))


def test_the_pads_are_what_the_database_holds(workdir, cli):
    """The scan above is meaningful: the same forms are found where the key must be."""
    import duckdb

    db = str(workdir / "w.duckdb")
    r = cli("keys", "load", "--db", db, "--name", "k", "--from-env", "K", env={"K": KEY.hex()})
    assert r.exit_code == 0
    inner, outer = (
        duckdb.connect(db)
        .execute("SELECT inner_pad, outer_pad FROM privacy.sqlanon_keys")
        .fetchone()
    )
    assert (inner, outer) == pads(KEY)
    assert any(f in inner for f in forms(KEY))


def test_key_loader_reads_files_and_encodings(tmp_path):
    from sqlanon.warehouse.keys import KeyError_, read_secret

    f = tmp_path / "k"
    f.write_text(base64.b64encode(KEY).decode() + "\n")
    assert read_secret(None, str(f), "base64") == KEY
    f.write_text("a long enough passphrase\n")
    assert read_secret(None, str(f), "utf8") == b"a long enough passphrase"
    try:
        read_secret("NOPE_NOT_SET", None, "hex")
    except KeyError_ as exc:
        assert "NOPE_NOT_SET is not set" in str(exc)
    else:
        raise AssertionError("expected an error")
    assert Path(f).exists()


def test_keys_load_into_postgres(cli, live, workdir):
    """The loader writes to a PostgreSQL server given as a URL, with bound parameters."""
    engine = live.get("postgres")
    info = engine.conn.info
    url = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    r = cli(
        "keys",
        "load",
        "--db",
        url,
        "--name",
        "pgkey",
        "--table",
        "pgkeys.k",
        "--from-env",
        "K",
        env={"K": KEY.hex()},
    )
    assert r.exit_code == 0, r.output
    assert_clean(r.output.encode(), "keys load output")
    (inner,) = engine.query('SELECT "inner_pad" FROM "pgkeys"."k" WHERE "name" = %s', ("pgkey",))[0]
    assert bytes(inner) == pads(KEY)[0]
