"""`sqlanon diff` (a policy change as a privacy reviewer reads it) and `conformance`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sqlanon.cli.base import (
    EXIT_CHECK,
    ReportFormat,
    err,
    fail,
    load_plan,
    out,
    target_dialects,
)
from sqlanon.output import emit
from sqlanon.plan.model import Plan
from sqlanon.sql import dialect


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
    from sqlanon.review.git import GitError, at_revision

    if fail_on not in (None, "weakened"):
        raise fail("--fail-on takes `weakened`")
    with tempfile.TemporaryDirectory(prefix="sqlanon-diff-") as tmp:
        if git is None:
            if len(paths) != 2:
                raise fail("give two policy files, OLD and NEW, or the files and --git REF")
            old_paths, new_paths = [paths[0]], [paths[1]]
            title = f"{paths[0]} → {paths[1]}"
        else:
            try:
                old_paths = at_revision(paths, git, Path(tmp))
            except GitError as exc:
                raise fail(str(exc)) from None
            new_paths = paths
            title = f"{', '.join(paths)} ({git} → working tree)"
        old = load_plan(old_paths) if old_paths else Plan((), (), ())
        new = load_plan(new_paths)
        changes = compare(old, new)
        files = {
            d.name: changed_files(emit.build(old, d), emit.build(new, d))
            for d in target_dialects(dialect_name)
        }
    if format is ReportFormat.json:
        sys.stdout.write(to_json(changes, files))
    elif format is ReportFormat.markdown:
        sys.stdout.write(to_markdown(title, changes, files))
    else:
        print_table(out, changes, files)
    if fail_on == "weakened" and any(c.verdict == WEAKENED for c in changes):
        raise typer.Exit(EXIT_CHECK)


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
    from sqlanon.report.conformance import matrix
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
    out.print(matrix(cases, names, cells))
    if failed:
        raise typer.Exit(EXIT_CHECK)
