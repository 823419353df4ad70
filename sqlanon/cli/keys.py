"""`sqlanon keys ddl | load | status`: the key relation and the secrets in it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sqlanon.cli.base import (
    DB_HELP,
    DIALECT_HELP,
    EXIT_CHECK,
    database_error,
    database_errors_of,
    fail,
    load_plan,
    open_database,
    out,
    target_dialects,
)
from sqlanon.sql import dialect


def keys_ddl(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    dialect_name: Annotated[str, typer.Option("--dialect", "-d", help=DIALECT_HELP)] = "duckdb",
) -> None:
    """Print the DDL that creates the key relation(s) the policies name, and which keys
    (names, versions, uses) must be loaded into them."""
    from sqlanon.sql.views import key_table_statements
    from sqlanon.warehouse.keys import needed

    plan = load_plan(paths)
    keys = needed(plan)
    for d in target_dialects(dialect_name):
        for t in plan.key_tables:
            sys.stdout.write(
                f"-- {d.title}: key relation {'.'.join(t)}. Grant it to the view "
                "owner only; it will hold secrets once keys are loaded.\n"
            )
            for s in key_table_statements(t, d):
                sys.stdout.write(s.text + ";\n")
            for table, name, version, uses in keys:
                if table == t:
                    sys.stdout.write(
                        f"-- needs key '{name}' version {version} ({uses}): sqlanon keys load "
                        f"--db <database> --table {'.'.join(t)} --name {name} "
                        f"--version {version} --generate\n"
                    )


def keys_load(
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    name: Annotated[str, typer.Option("--name", help="Key name, as the policy uses it.")],
    version: Annotated[int, typer.Option("--version", min=1)] = 1,
    table: Annotated[
        str | None,
        typer.Option(
            "--table", help="The key relation (default: the --policy's, or privacy.sqlanon_keys)."
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Take the key relation from this policy.")
    ] = None,
    from_env: Annotated[
        str | None, typer.Option("--from-env", help="Read the key from this variable.")
    ] = None,
    from_file: Annotated[
        str | None, typer.Option("--from-file", help="Read the key from this file.")
    ] = None,
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            help="Store 32 new random bytes: the secret exists only in the warehouse.",
        ),
    ] = False,
    encoding: Annotated[str, typer.Option("--encoding", help="hex, base64 or utf8.")] = "hex",
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite an existing version.")
    ] = False,
) -> None:
    """Store a key's HMAC pads in the key relation. The key is never printed or logged."""
    import secrets

    from sqlanon.sql.views import key_table_statements
    from sqlanon.warehouse.keys import KeyError_, read_secret, store

    if table is None and policy is not None:
        tables = load_plan([policy]).key_tables
        table = ".".join(tables[0]) if tables else None
    parts = tuple((table or "privacy.sqlanon_keys").split("."))
    try:
        if generate and (from_env or from_file):
            raise KeyError_("give --generate or a source (--from-env, --from-file), not both")
        secret = secrets.token_bytes(32) if generate else read_secret(from_env, from_file, encoding)
        engine = open_database(db, create=True)
        d = dialect.get(engine.dialect)
        try:
            for s in key_table_statements(parts, d):
                engine.execute(s.text)
            store(engine, d, parts, name, version, secret, replace=replace)
        finally:
            engine.close()
    except KeyError_ as exc:
        raise fail(str(exc)) from None
    except database_errors_of() as exc:
        raise fail(database_error(exc)) from None
    what = "generated and stored" if generate else "loaded"
    out.print(f"{what} key '{name}' version {version} in {'.'.join(parts)}", markup=False)


def keys_status(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
) -> None:
    """Which keys the policies read, and whether each is loaded in the database (never their
    values); exit 1 when one is missing."""
    from sqlanon.report.keys import status_table
    from sqlanon.warehouse.keys import is_loaded, needed

    plan = load_plan(paths)
    try:
        engine = open_database(db)
        try:
            d = dialect.get(engine.dialect)
            rows = []
            for table, name, version, uses in needed(plan):
                try:
                    loaded = is_loaded(engine, d, table, name, version)
                except database_errors_of():
                    loaded = False  # no key relation yet
                rows.append((".".join(table), name, version, uses, loaded))
        finally:
            engine.close()
    except database_errors_of() as exc:
        raise fail(database_error(exc)) from None
    out.print(status_table(rows, db))
    if not all(r[4] for r in rows):
        raise typer.Exit(EXIT_CHECK)
