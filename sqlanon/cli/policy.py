"""`sqlanon validate`, `explain` and `compile`: from policy files to a plan and its SQL."""

from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from sqlanon import api
from sqlanon.cli.base import (
    DIALECT_HELP,
    EXIT_CHECK,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ExplainFormat,
    OutputFormat,
    err,
    fail,
    load_plan,
    no_gc,
    out,
    target_names,
)
from sqlanon.output import write as output_write
from sqlanon.output.cache import LowerCache, PlanCache
from sqlanon.output.files import Artifact
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.files import expand, is_fragment
from sqlanon.policy.load import load_policies
from sqlanon.review.explain import (
    plan_json,
)
from sqlanon.sql import dialect


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
    from sqlanon.report.explain import print_plan

    plan = load_plan(paths)
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
    print_plan(out, plan)


INTERRUPTED_WRITE = (
    ": the folders reported written are complete; any other has its old files, or all of its "
    "new ones if it was being written (never a mix)"
)


def _emit(folder: Path, artifacts: list[Artifact], check: bool) -> bool:
    """Write one output folder, or with `check` compare it; False when it was stale."""
    if check:
        report = output_write.check(folder, artifacts)
        if report.ok:
            out.print(f"up to date: {folder} ({len(artifacts)} files)")
            return True
        for label, paths_ in (
            ("stale", report.stale),
            ("missing", report.missing),
            ("extra", report.extra),
        ):
            for p in paths_:
                err.print(f"{label}: {folder / p}", markup=False)
        return False
    try:
        report = output_write.write(folder, artifacts)
    except OSError as exc:
        raise fail(str(exc)) from None
    changed = len(report.stale) + len(report.missing) + len(report.extra)
    out.print(f"wrote {folder}: {len(artifacts)} files, {changed} changed")
    return True


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
    # incremental: an unchanged policy set is not planned again, and only objects whose plan
    # changed are lowered (sqlanon/output/cache.py)
    names = target_names(dialect_name)
    targets: list[dialect.Dialect] = []
    failed = writing = False

    def load() -> None:  # while a forked process reads its share of a large policy
        targets.extend(map(dialect.get, names))

    try:
        plan = load_plan(paths, PlanCache.default(), load)
        # one dialect's files are written while the next one's views are being lowered
        each = api.build_each(plan, targets, format.value, LowerCache.default())
        with no_gc(), closing(each):  # closing: a failed write stops the lowering processes
            try:
                for d, artifacts in each:
                    folder = out_dir / d.name if dialect_name.lower() == "all" else out_dir
                    writing = not check
                    failed = not _emit(folder, artifacts, check) or failed
            except (dialect.DialectError, api.LoweringFailed) as exc:
                raise fail(str(exc)) from None
    except KeyboardInterrupt:
        # each folder is written whole or not at all (sqlanon/output/write.py): say so, since
        # the user cannot tell whether the one being written at that moment changed
        left = INTERRUPTED_WRITE if writing else "" if check else ": nothing was written"
        err.print(f"interrupted{left}", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if failed:
        err.print("output is stale: run `sqlanon compile` without --check", markup=False)
        raise typer.Exit(EXIT_CHECK)
