"""The command line: each command parses its options, calls the API and hands the result to a
renderer (sqlanon.report)."""

from sqlanon.cli.app import app, main

__all__ = ["app", "main"]
