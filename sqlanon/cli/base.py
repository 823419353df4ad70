"""What every command shares: the Typer apps, the consoles, exit codes, option types and help
texts, and the few steps several commands take (load a plan, open a database, report an error).

Exit codes: 0 ok; 1 a check failed (stale output, k not met); 2 usage or policy error.
A policy error prints located diagnostics, never a traceback.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from sqlanon import api
from sqlanon.output.cache import PlanCache
from sqlanon.output.files import MANIFEST
from sqlanon.plan.model import Plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.sql import dialect

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


EXIT_INTERRUPTED = 130  # Ctrl-C: the shell's code for a command ended by SIGINT


DB_HELP = (
    "A DuckDB file, or a URL: postgresql://…, snowflake://user@account/db/schema, "
    "bigquery://project, spark://local, sc://host:port (docs/warehouses.md)."
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


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


@contextmanager
def no_gc() -> Iterator[None]:
    """A compile allocates many small, acyclic objects; pausing the cycle collector for its
    duration makes large policies about 20 % faster (measured by benchmarks/compile_scale)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def open_database(db: str, create: bool = False):  # type: ignore[no-untyped-def]
    """The engine --db names (sqlanon/warehouse/connect.py); only commands that write may
    create a DuckDB file."""
    from sqlanon.warehouse.connect import ConnectError, connect

    try:
        return connect(db, create=create)
    except ConnectError as exc:
        raise fail(str(exc)) from None
    except database_errors_of() as exc:
        raise fail(database_error(exc)) from None


def database_errors_of() -> tuple[type[Exception], ...]:
    from sqlanon.warehouse.connect import database_errors

    return database_errors()


def database_error(exc: Exception) -> str:
    """The engine's message without its SQL excerpt (which can be long), with a hint where
    the cause is known and not in the message."""
    message = str(exc).split("\n\nLINE ")[0].strip()
    hint = next((h for cause, h in _HINTS if cause in message), "")
    return f"database error: {message}" + (f"\nhint: {hint}" if hint else "")


# (text of the engine's message, what the user can do)
_HINTS = (
    (
        "Ambiguous reference to catalog or schema",
        "a DuckDB file is a catalog named after the file: tpch.duckdb makes a schema `tpch` "
        "ambiguous; name the file unlike every schema the policy reads",
    ),
)


def load_plan(
    paths: list[str],
    cache: PlanCache | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Plan:
    """The plan of the policies, or exit 2 with every policy error. With `cache`, the plan of
    an unchanged policy set is read back instead (sqlanon/output/cache.py). `meanwhile` runs
    while a large policy is read (api.plan_files)."""
    try:
        with no_gc():
            return api.plan_files(paths, cache, meanwhile)
    except PolicyError as exc:
        err.print(exc.render(), markup=False)
        raise typer.Exit(EXIT_USAGE) from None


def target_dialects(name: str) -> list[dialect.Dialect]:
    return [dialect.get(n) for n in target_names(name)]


def target_names(name: str) -> list[str]:
    """The dialects `--dialect name` asks for, by name (not loaded: a compile loads them while
    it reads the policy)."""
    names = dialect.available()
    if name.lower() == "all":
        return list(names)
    found = dialect.aliases().get(name.lower())
    if found is None:
        raise fail(f"unknown dialect '{name}'; expected one of {', '.join(names)} or all")
    return [found]


DIALECT_HELP = f"Target dialect: {', '.join(dialect.available())} (or postgresql, bq, …), or all."


def manifest_dialect(build_dir: Path) -> str:
    import json

    try:
        return str(json.loads((build_dir / MANIFEST).read_text())["dialect"])
    except (OSError, ValueError, KeyError):
        raise fail(f"{build_dir}: no readable manifest.json (not a compiled folder)") from None


def check_sources(plan, engine, paths: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Before anything is created: the live sources against the policy (what `drift` checks).
    A column the policy reads that is missing or of a type its transform cannot take stops
    the command, located at the policy line that reads it; a value read as engine text where
    a `type:` should be declared is a warning."""
    from sqlanon.measure.drift import ERROR, check, located

    findings = check(plan, engine)
    for f in findings:
        if f.kind in ("undeclared_type", "decimal_rounding"):
            err.print(f"warning: {f.where}: {f.detail}", markup=False)
    errors = [f for f in findings if f.severity == ERROR]
    if errors:
        err.print(PolicyError(located(errors, api.load(paths))).render(), markup=False)
        raise fail("the sources do not match the policy; nothing was changed")


def measure_in(db: str, total: int | None, show: bool, work):  # type: ignore[no-untyped-def]
    """Open the database, run `work(engine, dialect, step)` under a progress bar on stderr
    (shown on a terminal only; `step(text)` advances it) and close the database again."""
    from rich.progress import Progress

    try:
        engine = open_database(db)
        try:
            with Progress(console=err, transient=True, disable=not show) as progress:
                task = progress.add_task("measuring", total=total)

                def step(what: str) -> None:
                    progress.update(task, description=what)
                    progress.advance(task)

                return work(engine, dialect.get(engine.dialect), step)
        finally:
            engine.close()
    except database_errors_of() as exc:
        raise fail(database_error(exc) + missing_view_hint(exc)) from None


def missing_view_hint(exc: Exception) -> str:
    text = str(exc).lower()
    if "does not exist" in text or "not found" in text:
        return " (create the views first: sqlanon apply, or run the compiled SQL)"
    return ""
