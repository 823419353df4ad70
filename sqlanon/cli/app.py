"""The `sqlanon` command: a thin layer over load → plan → lower → emit. Each command is a
function in the module of its kind (policy, deploy, demo, keys, budget, measure, review): it
parses its options, calls the API and hands the result to a renderer (sqlanon.report). This
module registers them on the app of sqlanon/cli/base.py, in the order `--help` lists them."""

from __future__ import annotations

import os
import sys

import typer

from sqlanon import __version__
from sqlanon.cli import budget, demo, deploy, keys, measure, policy, review
from sqlanon.cli.base import EXIT_INTERRUPTED, app, err, keys_app, out
from sqlanon.sql.shapes import CompilerBug

__all__ = ["app", "keys_app", "main"]


def version() -> None:
    """Print sqlanon's version."""
    out.print(__version__)


# the commands, in the order `--help` lists them
for command in (
    policy.validate,
    policy.explain,
    policy.compile,
    deploy.deploy,
    deploy.apply,
    demo.demo,
    budget.budget,
    measure.risk,
    measure.utility,
    measure.tune,
    measure.drift,
    measure.monitor,
    review.diff,
    review.conformance,
    version,
):
    app.command()(command)
keys_app.command("ddl")(keys.keys_ddl)
keys_app.command("load")(keys.keys_load)
keys_app.command("status")(keys.keys_status)


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
        err.print("interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED and _unsaid(exc):
            err.print("interrupted", markup=False)
        raise


def _unsaid(exc: SystemExit) -> bool:
    """Whether a command was ended by Ctrl-C without a word: typer turns the interrupt into
    exit code 130 silently (raised from the KeyboardInterrupt), where a command that said what
    it left (compile) raises its own exit, from nothing."""
    return isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt)
