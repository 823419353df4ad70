"""`sqlanon deploy` (a compiled, reviewed folder) and `apply` (a policy, compiled and run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sqlanon import api
from sqlanon.cli.base import (
    DB_HELP,
    EXIT_CHECK,
    EXIT_USAGE,
    check_sources,
    database_error,
    database_errors_of,
    err,
    fail,
    load_plan,
    manifest_dialect,
    open_database,
    out,
)
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.sql import dialect


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
            folder_dialect = manifest_dialect(build_dir)
            plan = api.plan(api.load(policy))
            expected = {a.path: a.content for a in api.build(plan, folder_dialect)}
        folder = verify(build_dir, expected)
    except PolicyError as exc:
        err.print(exc.render(), markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except DeployError as exc:
        raise fail(str(exc), EXIT_CHECK) from None
    engine = open_database(db, create=True)
    try:
        if plan is not None and policy:  # the sources the reviewed views read are there
            check_sources(plan, engine, policy)
        result = run_deploy(folder, engine, prune=prune)
    except DeployError as exc:
        raise fail(str(exc), EXIT_CHECK) from None
    finally:
        engine.close()
    render(out, result, db)


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
    """Compile the policy, create its views in the warehouse --db names (a DuckDB file by default)
    and report rows kept, suppressed and released; with --epoch, refresh the differentially
    private releases too. To deploy what was reviewed, use `deploy` on the compiled folder."""
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

    plan = load_plan(paths)
    engine = open_database(db, create=True)
    d = dialect.get(engine.dialect)
    try:
        if csv and engine.dialect != "duckdb":
            raise fail("--csv loads into DuckDB only; load other warehouses with their tools")
        for spec in csv or []:
            relation, sep, path = spec.partition("=")
            parts = tuple(relation.split("."))
            if not sep or len(parts) != 2 or not all(parts) or not Path(path).is_file():
                raise fail(f"--csv {spec!r}: expected schema.table=existing/file.csv")
            engine.execute(d.statement("create_schema", d.ident(parts[0])).text)
            engine.execute(
                d.statement("load_csv", d.relation(parts), engine.placeholder()).text, (path,)
            )
        check_sources(plan, engine, paths)
        create(plan, d, engine)
        reports = report(plan, d, engine)
        released = refresh(plan, d, engine, epoch, allow_overspend) if epoch is not None else []
    except SourceError as exc:
        raise fail(str(exc)) from None
    except (DeployError, CommittedThenFailed) as exc:
        raise fail(str(exc), EXIT_CHECK) from None
    except RefreshRefused as exc:
        err.print(
            f"{exc}\nEach refresh is a new release with fresh noise and spends its epsilon; "
            "pass --allow-overspend to refresh anyway (the ledger records it).",
            markup=False,
        )
        raise typer.Exit(EXIT_CHECK) from None
    except database_errors_of() as exc:
        raise fail(database_error(exc)) from None
    finally:
        engine.close()
    print_reports(out, reports)
    if released:
        print_release_reports(out, released)
    elif plan.releases or plan.synthetic:
        kinds = [(len(plan.releases), "release(s)"), (len(plan.synthetic), "synthetic table(s)")]
        what = " and ".join(f"{n} {kind}" for n, kind in kinds if n)
        out.print(
            f"{what} not refreshed: pass --epoch N to refresh them "
            "(each refresh spends their epsilon; docs/dp.md).",
            markup=False,
        )
    if not all(r.k_ok for r in reports):
        err.print("k-anonymity is not met by every view (action: fail measures only)", markup=False)
        raise typer.Exit(EXIT_CHECK)
