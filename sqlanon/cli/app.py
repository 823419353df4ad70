"""The `sqlanon` command: a thin layer over load → plan → lower → emit.

Exit codes: 0 ok; 1 a check failed (stale output, k not met); 2 usage or policy error.
A policy error prints located diagnostics, never a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sqlanon import __version__, api
from sqlanon.output import emit
from sqlanon.output import write as output_write
from sqlanon.output.cache import LowerCache
from sqlanon.output.files import MANIFEST
from sqlanon.plan.model import Plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.files import expand, is_fragment
from sqlanon.policy.load import load_policies
from sqlanon.report import numbers
from sqlanon.review.explain import (
    budget_lines,
    column_rows,
    number,
    plan_json,
    release_rows,
    release_rules,
    view_rules,
)
from sqlanon.sql import dialect
from sqlanon.sql.shapes import CompilerBug

app = typer.Typer(
    help="SQL-native anonymization: compile YAML privacy policies into warehouse SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    suggest_commands=False,  # click suggests already: one "Did you mean" is enough
)
keys_app = typer.Typer(
    help="The key relation: print its DDL, load a key.",
    no_args_is_help=True,
    suggest_commands=False,
)
app.add_typer(keys_app, name="keys")

# piped or redirected output is read by programs and diffed: never cut to a width (on a
# terminal, the terminal's width or COLUMNS)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_CHECK = 1
EXIT_USAGE = 2
DB_HELP = (
    "A DuckDB file, or a URL: postgresql://…, snowflake://user@account/db/schema, "
    "spark://local, sc://host:port (docs/warehouses.md)."
)


class Format(str, Enum):
    table = "table"
    json = "json"


class ReportFormat(str, Enum):
    """For commands whose output is also a document (a PR comment, a data sheet)."""

    table = "table"
    markdown = "markdown"
    json = "json"


class OutputFormat(str, Enum):
    sql = "sql"
    dbt = "dbt"


class ExplainFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"
    openlineage = "openlineage"


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


@contextmanager
def _no_gc() -> Iterator[None]:
    """A compile allocates many small, acyclic objects; pausing the cycle collector for its
    duration makes large policies about 20 % faster (measured by benchmarks/compile_scale)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _open_database(db: str, create: bool = False):  # type: ignore[no-untyped-def]
    """The engine --db names (sqlanon/warehouse/connect.py); only commands that write may
    create a DuckDB file."""
    from sqlanon.warehouse.connect import ConnectError, connect

    try:
        return connect(db, create=create)
    except ConnectError as exc:
        raise _fail(str(exc)) from None
    except _database_errors() as exc:
        raise _fail(_database_error(exc)) from None


def _database_errors() -> tuple[type[Exception], ...]:
    from sqlanon.warehouse.connect import database_errors

    return database_errors()


def _database_error(exc: Exception) -> str:
    """The engine's message without its SQL excerpt (which can be long)."""
    message = str(exc).split("\n\nLINE ")[0].strip()
    return f"database error: {message}"


def _plan(paths: list[str]) -> Plan:
    try:
        with _no_gc():
            return api.plan(api.load(paths))
    except PolicyError as exc:
        err.print(exc.render(), markup=False)
        raise typer.Exit(EXIT_USAGE) from None


def _dialects(name: str) -> list[dialect.Dialect]:
    names = dialect.available()
    if name.lower() == "all":
        return [dialect.get(n) for n in names]
    found = dialect.aliases().get(name.lower())
    if found is None:
        raise _fail(f"unknown dialect '{name}'; expected one of {', '.join(names)} or all")
    return [dialect.get(found)]


DIALECT_HELP = f"Target dialect: {', '.join(dialect.available())} (or postgresql, bq, …), or all."


@app.command()
def validate(
    paths: Annotated[
        list[str], typer.Argument(help="Policy or fragment files, or folders of them.")
    ],
) -> None:
    """Check policies and fragments; report every error with file:line:column."""
    try:
        policies = len(load_policies(paths, check_fragments=True))
    except PolicyError as exc:
        err.print(exc.render(), markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    fragments = sum(is_fragment(path) for path, _ in expand(paths))
    out.print(
        f"ok: {policies} polic{'y' if policies == 1 else 'ies'}, {fragments} "
        f"fragment{'' if fragments == 1 else 's'}"
    )


@app.command()
def explain(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    format: Annotated[
        ExplainFormat,
        typer.Option(
            "--format",
            help="table, json, markdown (auditor data sheet) or openlineage (lineage events).",
        ),
    ] = ExplainFormat.table,
    namespace: Annotated[
        str, typer.Option("--namespace", help="OpenLineage dataset namespace (the warehouse).")
    ] = "warehouse",
) -> None:
    """Show the plan: what every column becomes, its privacy class, and each table's rules."""
    plan = _plan(paths)
    if format is ExplainFormat.json:
        sys.stdout.write(plan_json(plan))
        return
    if format is ExplainFormat.openlineage:
        from sqlanon.output.openlineage import to_json

        sys.stdout.write(to_json(plan, namespace))
        return
    if format is ExplainFormat.markdown:
        from sqlanon.review.datasheet import render

        sys.stdout.write(render(plan))
        return
    for view in plan.views:
        t = Table(
            title=f"{'.'.join(view.source)} → {'.'.join(view.target)}  "
            f"[dim]({view.policy_file}, table {view.name})[/]",
            title_justify="left",
            show_lines=False,
        )
        for col in ("column", "source", "transform", "parameters", "class", "type"):
            t.add_column(col, overflow="fold", no_wrap=col in ("transform", "class"))
        for row in column_rows(view):
            t.add_row(
                *(row[c] for c in ("column", "source", "transform", "parameters", "class", "type"))
            )
        out.print(t)
        for rule in view_rules(view):
            out.print(f"  • {rule}", markup=False)
        out.print()
    columns = ("measure", "aggregate", "epsilon", "sensitivity", "noise scale", "95 % interval")
    for r in plan.releases:
        t = Table(
            title=f"{'.'.join(r.source)} → {'.'.join(r.target)}  "
            f"[dim]({r.policy_file}, release {r.name}; by "
            f"{', '.join(c.output for c in r.group_by) or 'nothing'})[/]",
            title_justify="left",
        )
        for col in columns:
            t.add_column(col, overflow="fold", no_wrap=col in ("measure", "epsilon"))
        for row in release_rows(r):
            t.add_row(*(row[c] for c in columns))
        out.print(t)
        for rule in release_rules(r):
            out.print(f"  • {rule}", markup=False)
        out.print()
    for line in budget_lines(plan):
        out.print(line, markup=False)


@app.command()
def compile(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    dialect_name: Annotated[
        str, typer.Option("--dialect", "-d", help=DIALECT_HELP + " all: one folder each.")
    ] = "duckdb",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("build"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the output is not up to date.")
    ] = False,
    format: Annotated[
        OutputFormat,
        typer.Option("--format", help="sql (files and a manifest) or dbt (a dbt project)."),
    ] = OutputFormat.sql,
) -> None:
    """Compile policies into SQL files and a manifest, or a dbt project (atomically), or
    check them."""
    plan = _plan(paths)
    targets = _dialects(dialect_name)
    failed = False
    cache = LowerCache.default()  # incremental: only objects whose plan changed are lowered
    for d in targets:
        folder = out_dir / d.name if dialect_name.lower() == "all" else out_dir
        try:
            with _no_gc():
                artifacts = api.build(plan, d, format.value, cache)
        except dialect.DialectError as exc:
            raise _fail(str(exc)) from None
        if check:
            report = output_write.check(folder, artifacts)
            if report.ok:
                out.print(f"up to date: {folder} ({len(artifacts)} files)")
                continue
            failed = True
            for label, paths_ in (
                ("stale", report.stale),
                ("missing", report.missing),
                ("extra", report.extra),
            ):
                for p in paths_:
                    err.print(f"{label}: {folder / p}", markup=False)
        else:
            try:
                report = output_write.write(folder, artifacts)
            except OSError as exc:
                raise _fail(str(exc)) from None
            changed = len(report.stale) + len(report.missing) + len(report.extra)
            out.print(f"wrote {folder}: {len(artifacts)} files, {changed} changed")
    if failed:
        err.print("output is stale: run `sqlanon compile` without --check", markup=False)
        raise typer.Exit(EXIT_CHECK)


@app.command()
def deploy(
    build_dir: Annotated[Path, typer.Argument(help="A folder `sqlanon compile` wrote.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Drop views earlier deploys created that the folder lacks."),
    ] = False,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="Refuse the folder unless these policies compile to it."),
    ] = None,
) -> None:
    """Run a compiled, reviewed folder on a warehouse, exactly as reviewed: every file is
    checked against the manifest's digests (an edited, added or missing file is refused and
    nothing runs), the setup/ and views/ files run in the manifest's order in one transaction
    where the engine has them, and an audit row records who deployed what (docs/deploy.md).

    Rolling back is deploying an older folder."""
    from sqlanon.report.deploy import render
    from sqlanon.warehouse.deploy import DeployError, verify
    from sqlanon.warehouse.deploy import deploy as run_deploy

    plan = None
    try:
        expected = None
        if policy:
            folder_dialect = _manifest_dialect(build_dir)
            plan = api.plan(api.load(policy))
            expected = {a.path: a.content for a in api.build(plan, folder_dialect)}
        folder = verify(build_dir, expected)
    except PolicyError as exc:
        err.print(exc.render(), markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except DeployError as exc:
        raise _fail(str(exc), EXIT_CHECK) from None
    engine = _open_database(db, create=True)
    try:
        if plan is not None and policy:  # the sources the reviewed views read are there
            _check_sources(plan, engine, policy)
        result = run_deploy(folder, engine, prune=prune)
    except DeployError as exc:
        raise _fail(str(exc), EXIT_CHECK) from None
    finally:
        engine.close()
    render(out, result, db)


def _manifest_dialect(build_dir: Path) -> str:
    import json

    try:
        return str(json.loads((build_dir / MANIFEST).read_text())["dialect"])
    except (OSError, ValueError, KeyError):
        raise _fail(f"{build_dir}: no readable manifest.json (not a compiled folder)") from None


@app.command()
def apply(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    csv: Annotated[
        list[str] | None,
        typer.Option("--csv", help="Load a source first: schema.table=path/to/file.csv"),
    ] = None,
    epoch: Annotated[
        int | None,
        typer.Option("--epoch", min=0, help="Refresh the releases for this epoch (docs/dp.md)."),
    ] = None,
    allow_overspend: Annotated[
        bool,
        typer.Option(
            "--allow-overspend",
            help="Refresh even if the epoch's spend goes over the budget (recorded in the ledger).",
        ),
    ] = False,
) -> None:
    """Create the views in a DuckDB database and report rows kept, suppressed and released;
    with --epoch, refresh the differentially private releases too."""
    from sqlanon.demo.run import print_release_reports, print_reports
    from sqlanon.warehouse.apply import (
        CommittedThenFailed,
        DeployError,
        RefreshRefused,
        SourceError,
        create,
        refresh,
        report,
    )

    plan = _plan(paths)
    engine = _open_database(db, create=True)
    d = dialect.get(engine.dialect)
    try:
        if csv and engine.dialect != "duckdb":
            raise _fail("--csv loads into DuckDB only; load other warehouses with their tools")
        for spec in csv or []:
            relation, sep, path = spec.partition("=")
            parts = tuple(relation.split("."))
            if not sep or len(parts) != 2 or not all(parts) or not Path(path).is_file():
                raise _fail(f"--csv {spec!r}: expected schema.table=existing/file.csv")
            engine.execute(d.statement("create_schema", d.ident(parts[0])).text)
            engine.execute(
                d.statement("load_csv", d.relation(parts), engine.placeholder()).text, (path,)
            )
        _check_sources(plan, engine, paths)
        create(plan, d, engine)
        reports = report(plan, d, engine)
        released = refresh(plan, d, engine, epoch, allow_overspend) if epoch is not None else []
    except SourceError as exc:
        raise _fail(str(exc)) from None
    except (DeployError, CommittedThenFailed) as exc:
        raise _fail(str(exc), EXIT_CHECK) from None
    except RefreshRefused as exc:
        err.print(
            f"{exc}\nEach refresh is a new release with fresh noise and spends its epsilon; "
            "pass --allow-overspend to refresh anyway (the ledger records it).",
            markup=False,
        )
        raise typer.Exit(EXIT_CHECK) from None
    except _database_errors() as exc:
        raise _fail(_database_error(exc)) from None
    finally:
        engine.close()
    print_reports(out, reports)
    if released:
        print_release_reports(out, released)
    elif plan.releases:
        out.print(
            f"{len(plan.releases)} release(s) not refreshed: pass --epoch N to refresh them "
            "(each refresh spends their epsilon; docs/dp.md).",
            markup=False,
        )
    if not all(r.k_ok for r in reports):
        err.print("k-anonymity is not met by every view (action: fail measures only)", markup=False)
        raise typer.Exit(EXIT_CHECK)


def _check_sources(plan, engine, paths: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Before anything is created: the live sources against the policy (what `drift` checks).
    A column the policy reads that is missing or of a type its transform cannot take stops
    the command, located at the policy line that reads it; a value read as engine text where
    a `type:` should be declared is a warning."""
    from sqlanon.measure.drift import ERROR, check, located

    findings = check(plan, engine)
    for f in findings:
        if f.kind == "undeclared_type":
            err.print(f"warning: {f.object}, {f.relation}.{f.column}: {f.detail}", markup=False)
    errors = [f for f in findings if f.severity == ERROR]
    if errors:
        err.print(PolicyError(located(errors, api.load(paths))).render(), markup=False)
        raise _fail("the sources do not match the policy; nothing was changed")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers to generate (orders are 4×).")] = 2000,
    rows: Annotated[int, typer.Option(help="Rows shown side by side.")] = 2,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Keep the demo database in this new DuckDB file (sources, keys, views, the "
            "epoch-1 refresh) for the commands that take --db. An existing file is refused.",
        ),
    ] = None,
) -> None:
    """Run the retail example end to end on an embedded DuckDB."""
    from sqlanon.demo.run import run

    if db is not None and db.exists():
        raise _fail(f"{db} exists: the demo writes a new database (remove it, or choose a path)")
    run(out, customers=customers, rows=rows, database=str(db) if db else ":memory:")
    if db is not None:
        out.print(
            f"\nThe demo database is in {db}: try [bold]sqlanon risk "
            f"examples/retail/policy.yml --db {db}[/]."
        )


@keys_app.command("ddl")
def keys_ddl(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    dialect_name: Annotated[str, typer.Option("--dialect", "-d", help=DIALECT_HELP)] = "duckdb",
) -> None:
    """Print the DDL that creates the key relation(s) the policies name, and which keys
    (names, versions, uses) must be loaded into them."""
    from sqlanon.sql.views import key_table_statements
    from sqlanon.warehouse.keys import needed

    plan = _plan(paths)
    keys = needed(plan)
    for d in _dialects(dialect_name):
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


@keys_app.command("load")
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
        tables = _plan([policy]).key_tables
        table = ".".join(tables[0]) if tables else None
    parts = tuple((table or "privacy.sqlanon_keys").split("."))
    try:
        if generate and (from_env or from_file):
            raise KeyError_("give --generate or a source (--from-env, --from-file), not both")
        secret = secrets.token_bytes(32) if generate else read_secret(from_env, from_file, encoding)
        engine = _open_database(db, create=True)
        d = dialect.get(engine.dialect)
        try:
            for s in key_table_statements(parts, d):
                engine.execute(s.text)
            store(engine, d, parts, name, version, secret, replace=replace)
        finally:
            engine.close()
    except KeyError_ as exc:
        raise _fail(str(exc)) from None
    except _database_errors() as exc:
        raise _fail(_database_error(exc)) from None
    what = "generated and stored" if generate else "loaded"
    out.print(f"{what} key '{name}' version {version} in {'.'.join(parts)}", markup=False)


@keys_app.command("status")
def keys_status(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
) -> None:
    """Which keys the policies read, and whether each is loaded in the database (never their
    values); exit 1 when one is missing."""
    from sqlanon.warehouse.keys import is_loaded, needed

    plan = _plan(paths)
    try:
        engine = _open_database(db)
        try:
            d = dialect.get(engine.dialect)
            rows = []
            for table, name, version, uses in needed(plan):
                try:
                    loaded = is_loaded(engine, d, table, name, version)
                except _database_errors():
                    loaded = False  # no key relation yet
                rows.append((".".join(table), name, version, uses, loaded))
        finally:
            engine.close()
    except _database_errors() as exc:
        raise _fail(_database_error(exc)) from None
    t = Table(title=f"keys ({db})", title_justify="left")
    for col in ("relation", "key", "version", "used for", ""):
        t.add_column(col)
    for relation, name, version, uses, loaded in rows:
        mark = "[green]loaded[/]" if loaded else "[bold red]missing[/]"
        t.add_row(relation, name, str(version), uses, mark)
    out.print(t)
    if not all(r[4] for r in rows):
        raise typer.Exit(EXIT_CHECK)


@app.command()
def budget(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[
        str | None,
        typer.Option("--db", help="Also read the ledger: " + DB_HELP),
    ] = None,
) -> None:
    """Print what each refresh of the releases spends against the budget and, with --db,
    what the warehouse's ledger recorded per epoch (exit 1 if an epoch went over)."""
    from sqlanon.warehouse.budget import planned, spent

    plan = _plan(paths)
    if not plan.releases:
        out.print("no releases: nothing spends privacy budget", markup=False)
        return
    t = Table(title="Per refresh (compiled)", title_justify="left")
    for col in ("policy", "release", "epsilon", "delta"):
        t.add_column(col, justify="left" if col in ("policy", "release") else "right")
    for p in planned(plan):
        for name, eps, delta in p.releases:
            t.add_row(p.policy, name, number(eps), number(delta))
        t.add_row(
            p.policy,
            "[bold]total / budget[/]",
            f"{number(p.epsilon)} / {number(p.budget_epsilon)}",
            f"{number(p.delta)} / {number(p.budget_delta)}",
            end_section=True,
        )
    out.print(t)
    if db is None:
        return
    try:
        engine = _open_database(db)
        try:
            d = dialect.get(engine.dialect)
            present = [t for t in plan.ledgers if engine.columns(t)]  # no ledger: no refresh
            recorded = tuple(r for r in plan.releases if r.ledger in present)
            rows = spent(replace(plan, releases=recorded), d, engine)
        finally:
            engine.close()
    except _database_errors() as exc:
        raise _fail(_database_error(exc)) from None
    if not rows:
        out.print(f"no refresh recorded in {db} yet: nothing spent", markup=False)
        return
    t = Table(title=f"Spent, from the ledger ({db})", title_justify="left")
    for col in ("epoch", "policy", "refreshed", "epsilon / budget", "delta / budget", ""):
        t.add_column(col, justify="right" if col in ("epoch",) else "left")
    for s in rows:
        refreshed = ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in s.refreshes)
        limit = "?" if s.budget_epsilon is None else number(s.budget_epsilon)
        dlimit = "?" if s.budget_delta is None else number(s.budget_delta)
        verdict = "[red]OVER BUDGET[/]" if s.over else ("[green]ok[/]" if limit != "?" else "")
        t.add_row(
            str(s.epoch),
            s.policy,
            refreshed,
            f"{number(s.epsilon)} / {limit}",
            f"{number(s.delta)} / {dlimit}",
            verdict,
        )
    out.print(t)
    total_eps = sum(s.epsilon for s in rows)
    out.print(
        f"{len({s.epoch for s in rows})} epoch(s) recorded; ε spent over all of them: "
        f"{number(total_eps)} (epochs compose: the total bounds what all releases reveal together)",
        markup=False,
    )
    if any(s.over for s in rows):
        raise typer.Exit(EXIT_CHECK)


@app.command()
def risk(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    population: Annotated[
        bool,
        typer.Option(
            "--population/--no-population",
            help="Also read the source (with its keys) for journalist and marketer risk.",
        ),
    ] = True,
) -> None:
    """Measure each view's re-identification risk (k, class sizes, prosecutor, journalist and
    marketer risk) and its sensitive columns' l-diversity and t-closeness, by queries in the
    database; exit 1 when a declared k, l or t is not met (docs/risk.md)."""
    from sqlanon.measure.risk import measure, steps
    from sqlanon.report.risk import print_risks, to_json

    plan = _plan(paths)
    show = format is Format.table and err.is_terminal
    risks = _measure_in(
        db, steps(plan, population), show, lambda e, d, step: measure(plan, d, e, population, step)
    )
    if format is Format.json:
        sys.stdout.write(to_json(risks))
    elif not risks:
        out.print("no view declares quasi-identifiers: nothing to measure", markup=False)
    else:
        print_risks(out, risks)
    if not all(r.ok for r in risks):
        if format is Format.table:
            err.print("a declared requirement (k, l or t) is not met", markup=False)
        raise typer.Exit(EXIT_CHECK)


def _measure_in(db: str, total: int | None, show: bool, work):  # type: ignore[no-untyped-def]
    """Open the database, run `work(engine, dialect, step)` under a progress bar on stderr
    (shown on a terminal only; `step(text)` advances it) and close the database again."""
    from rich.progress import Progress

    try:
        engine = _open_database(db)
        try:
            with Progress(console=err, transient=True, disable=not show) as progress:
                task = progress.add_task("measuring", total=total)

                def step(what: str) -> None:
                    progress.update(task, description=what)
                    progress.advance(task)

                return work(engine, dialect.get(engine.dialect), step)
        finally:
            engine.close()
    except _database_errors() as exc:
        raise _fail(_database_error(exc) + _missing_view_hint(exc)) from None


def _missing_view_hint(exc: Exception) -> str:
    text = str(exc).lower()
    if "does not exist" in text or "not found" in text:
        return " (create the views first: sqlanon apply, or run the compiled SQL)"
    return ""


@app.command()
def utility(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    epoch: Annotated[
        int | None, typer.Option("--epoch", min=0, help="Release epoch (default: the latest).")
    ] = None,
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a report with charts and the risk summary."),
    ] = None,
) -> None:
    """Compare raw and anonymized data in the database: per column NULLs, mean, std,
    quantiles and distribution distance; correlations; suppression; each release's error
    against the plain aggregate. Exit 1 when a declared utility check fails (docs/utility.md).
    Reads raw data: for whoever may."""
    from sqlanon.measure.risk import measure as risk_measure
    from sqlanon.measure.utility import measure, steps
    from sqlanon.report.utility import print_utility, to_json

    plan = _plan(paths)
    show = format is Format.table and err.is_terminal

    def work(e, d, step):  # type: ignore[no-untyped-def]
        measured = measure(plan, d, e, epoch, step)
        return measured, (risk_measure(plan, d, e) if html else [])

    (views, releases), risks = _measure_in(db, steps(plan), show, work)
    if html is not None:
        from sqlanon.report.html import render

        title = ", ".join(
            sorted({v.policy for v in plan.views} | {r.policy for r in plan.releases})
        )
        output_write.replace_file(
            html, render(f"{title}: risk and utility", db, views, releases, risks)
        )
        if format is Format.table:
            err.print(f"wrote {html}", markup=False)
    if format is Format.json:
        sys.stdout.write(to_json(views, releases))
    else:
        print_utility(out, views, releases)
    failed = [c for x in (*views, *releases) for c in x.checks if not c.ok]
    if failed:
        if format is Format.table:
            for c in failed:
                measured = "not measurable" if c.measured is None else numbers.figure(c.measured)
                err.print(f"utility check failed: {c.check} (measured {measured})", markup=False)
        raise typer.Exit(EXIT_CHECK)


@app.command()
def tune(
    paths: Annotated[list[str], typer.Argument(help="The policy file (and any it needs).")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    table: Annotated[
        str | None, typer.Option("--table", help="The table to tune (default: the only one).")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=2, help="Default: the policy's k.")] = None,
    max_suppression: Annotated[
        float, typer.Option("--max-suppression", min=0, max=100, help="Percent of rows.")
    ] = 0.0,
    l_value: Annotated[
        int | None, typer.Option("--l", min=1, help="Distinct l-diversity to require too.")
    ] = None,
    t_value: Annotated[
        float | None, typer.Option("--t", min=0, max=1, help="t-closeness to require too.")
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option("--sensitive", help="Default: the policy's l/t column.")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite the levels in the policy file.")
    ] = False,
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Search the hierarchy levels of the quasi-identifiers for the least-generalized ones
    that reach k (and l, t) with at most --max-suppression % of rows suppressed; print them
    as a patch of the policy, or --write it (docs/risk.md)."""
    from decimal import Decimal

    from sqlanon.measure.tune import Goal, TuneError, search, with_levels
    from sqlanon.report.tune import print_result, result_json

    plan = _plan(paths)
    candidates = [v for v in plan.views if v.k_anonymity and (table is None or v.name == table)]
    if len(candidates) != 1:
        names = ", ".join(v.name for v in plan.views if v.k_anonymity) or "none"
        raise _fail(f"name one table with k_anonymity to tune (--table); tables: {names}")
    view = candidates[0]
    declared = view.l_diversity or view.t_closeness
    goal = Goal(
        k=k or view.k_anonymity.k,  # type: ignore[union-attr]
        max_suppression=Decimal(str(max_suppression)) / 100,
        l=l_value,
        sensitive=sensitive or (declared.sensitive if declared else None),
        t=None if t_value is None else Decimal(str(t_value)),
    )
    if (goal.l or goal.t is not None) and goal.sensitive is None:
        raise _fail("--l and --t need a sensitive column: --sensitive COLUMN")
    show = format is Format.table and err.is_terminal
    try:
        result = _measure_in(
            db,
            None,
            show,
            lambda e, d, step: search(view, goal, d, e, lambda n: step(f"{n} nodes evaluated")),
        )
    except TuneError as exc:
        raise _fail(str(exc)) from None
    patched = None
    if result.best is not None:
        levels = {
            d.column: lvl for d, lvl in zip(result.dimensions, result.best.levels, strict=True)
        }
        source = Path(view.policy_file)
        original = source.read_text(encoding="utf-8")
        try:
            patched = with_levels(original, view.policy_file, view.name, levels, goal)
        except (TuneError, PolicyError) as exc:
            raise _fail(str(exc)) from None
        if write and patched != original:
            output_write.replace_file(source, patched)
    if format is Format.json:
        sys.stdout.write(result_json(result, goal))
    else:
        print_result(
            out, result, goal, view.policy_file, original if patched else None, patched, write
        )
    if result.best is None:
        raise typer.Exit(EXIT_CHECK)


@app.command()
def drift(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Compare the live source catalog with the policy: new columns are reported (they stay
    out of the views), missing columns and type changes are errors (exit 1; docs/drift.md)."""
    import json
    from dataclasses import asdict

    from sqlanon.measure.drift import ERROR, check

    plan = _plan(paths)
    findings = _measure_in(db, None, False, lambda e, d, step: check(plan, e))
    if format is Format.json:
        doc = {
            "findings": [asdict(f) for f in findings],
            "ok": not any(f.severity == ERROR for f in findings),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif not findings:
        out.print("no drift: every source matches the policy", markup=False)
    else:
        t = Table(title=f"schema drift ({db})", title_justify="left")
        for col in ("", "object", "relation", "column", "what"):
            t.add_column(col, overflow="fold")
        for f in findings:
            mark = "[bold red]error[/]" if f.severity == ERROR else "[yellow]warning[/]"
            t.add_row(mark, f.object, f.relation, f.column or "", f.detail)
        out.print(t)
    if any(f.severity == ERROR for f in findings):
        raise typer.Exit(EXIT_CHECK)


@app.command()
def monitor(
    paths: Annotated[list[str], typer.Argument(help="Policy files or folders.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)],
    format: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Measure what risk, utility and drift measure, append the figures to a history table in
    the warehouse and compare with the previous run: exit 1 when k or l fell, t or a risk
    rose, new sample uniques appeared, a declared utility check stopped holding or the
    sources' schema changed (docs/monitor.md). For a scheduled job; reads raw data."""
    from sqlanon.measure.monitor import history_table, run
    from sqlanon.measure.monitor import steps as monitor_steps
    from sqlanon.report.monitor import render, to_json

    plan = _plan(paths)
    show = format is Format.table and err.is_terminal
    result = _measure_in(db, monitor_steps(plan), show, lambda e, d, step: run(plan, d, e, step))
    if format is Format.json:
        sys.stdout.write(to_json(result))
    else:
        render(out, result, ".".join(history_table(plan)))
    if not result.ok:
        raise typer.Exit(EXIT_CHECK)


@app.command()
def diff(
    paths: Annotated[
        list[str], typer.Argument(help="OLD NEW policy files, or with --git the policy files.")
    ],
    git: Annotated[
        str | None, typer.Option("--git", help="Compare the working tree with this revision.")
    ] = None,
    format: Annotated[
        ReportFormat, typer.Option("--format", help="table, markdown or json.")
    ] = ReportFormat.table,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="`weakened`: exit 1 if anything weakens.")
    ] = None,
    dialect_name: Annotated[
        str, typer.Option("--dialect", help="Whose generated SQL files to list, or all.")
    ] = "duckdb",
) -> None:
    """Classify every change between two versions of a policy as weakened, strengthened or
    neutral, with the reason, and list the generated SQL files that change (docs/diff.md)."""
    import tempfile

    from sqlanon.report.diff import print_table, to_json, to_markdown
    from sqlanon.review.diff import WEAKENED, changed_files, compare

    if fail_on not in (None, "weakened"):
        raise _fail("--fail-on takes `weakened`")
    with tempfile.TemporaryDirectory(prefix="sqlanon-diff-") as tmp:
        if git is None:
            if len(paths) != 2:
                raise _fail("give two policy files, OLD and NEW, or the files and --git REF")
            old_paths, new_paths = [paths[0]], [paths[1]]
            title = f"{paths[0]} → {paths[1]}"
        else:
            old_paths = _at_revision(paths, git, Path(tmp))
            new_paths = paths
            title = f"{', '.join(paths)} ({git} → working tree)"
        old = _plan(old_paths) if old_paths else Plan((), (), ())
        new = _plan(new_paths)
        changes = compare(old, new)
        files = {
            d.name: changed_files(emit.build(old, d), emit.build(new, d))
            for d in _dialects(dialect_name)
        }
    if format is ReportFormat.json:
        sys.stdout.write(to_json(changes, files))
    elif format is ReportFormat.markdown:
        sys.stdout.write(to_markdown(title, changes, files))
    else:
        print_table(out, changes, files)
    if fail_on == "weakened" and any(c.verdict == WEAKENED for c in changes):
        raise typer.Exit(EXIT_CHECK)


def _at_revision(paths: list[str], rev: str, into: Path) -> list[str]:
    """The repository's tree at `rev` unpacked into `into`; the same policy paths there
    (a policy that did not exist at `rev` is left out: everything in it is new)."""
    import io
    import subprocess
    import tarfile

    first = Path(paths[0]).resolve()
    try:
        top = subprocess.run(
            ["git", "-C", str(first.parent), "rev-parse", "--show-toplevel"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", top, "archive", "--format=tar", rev],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else detail
        raise _fail(f"--git {rev}: {text or exc}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    out = []
    for p in paths:
        rel = Path(p).resolve().relative_to(Path(top).resolve())
        if (into / rel).exists():
            out.append(str(into / rel))
    return out


@app.command()
def conformance(
    engine_names: Annotated[
        list[str] | None,
        typer.Option("--engine", "-e", help="Engines to run (default: every one available)."),
    ] = None,
) -> None:
    """Run the conformance vectors on live engines and print the transform × engine matrix."""
    # the one product module that starts test engines: this command's job is to run the
    # vectors on them (pyproject.toml's banned-api rule keeps every other module away)
    from sqlanon import testing as engines  # noqa: TID251
    from sqlanon.review.conformance import load_cases, run_case

    names = engine_names or [e for e in engines.ENGINES if e in dialect.available()]
    cases = load_cases()
    cells: dict[tuple[str, str], list[str]] = {}
    failed = False
    for name in names:
        try:
            with engines.session(name) as engine:
                d = dialect.get(name)
                for case in cases:
                    outcome = run_case(case, d, engine)
                    verdict = "n/a" if outcome.unsupported else "ok" if outcome.ok else "FAIL"
                    failed |= verdict == "FAIL"
                    cells.setdefault((case.transform, name), []).append(verdict)
        except engines.EngineUnavailable as exc:
            err.print(f"{name}: unavailable ({exc})", markup=False)
            for case in cases:
                cells.setdefault((case.transform, name), []).append("unavailable")
    t = Table(
        title=f"Conformance: {len(cases)} cases, {sum(len(c.vectors) for c in cases)} vectors",
        title_justify="left",
    )
    t.add_column("transform")
    for name in names:
        t.add_column(name, justify="center")
    for transform in sorted({c.transform for c in cases}):
        row = [transform]
        for name in names:
            verdicts = cells[(transform, name)]
            ok = verdicts.count("ok")
            if "unavailable" in verdicts:
                row.append("[dim]unavailable[/]")
            elif "FAIL" in verdicts:
                row.append(f"[red]{verdicts.count('FAIL')} failing[/]")
            else:
                na = verdicts.count("n/a")
                row.append(f"[green]{ok}/{len(verdicts)} ok[/]" + (f" ({na} n/a)" if na else ""))
        t.add_row(*row)
    out.print(t)
    if failed:
        raise typer.Exit(EXIT_CHECK)


@app.command()
def version() -> None:
    """Print sqlanon's version."""
    out.print(__version__)


def _one_paragraph_help(typer_app: typer.Typer) -> None:
    """Command help from docstrings, each paragraph as one line: the hard line breaks of the
    source would otherwise show as ragged breaks in `--help`."""
    for command in typer_app.registered_commands:
        doc = command.callback.__doc__ if command.callback else None
        if command.help is None and doc:
            paragraphs = [" ".join(p.split()) for p in doc.strip().split("\n\n")]
            command.help = "\n\n".join(p for p in paragraphs if p)


_one_paragraph_help(app)
_one_paragraph_help(keys_app)


def main() -> None:
    try:
        app()
    except CompilerBug as exc:
        err.print(f"internal error (a bug in sqlanon, please report it): {exc}", markup=False)
        if os.environ.get("SQLANON_DEBUG"):
            raise
        sys.exit(3)
    except KeyboardInterrupt:
        sys.exit(130)
