"""bqemulator, a local BigQuery REST API (DuckDB underneath, SQL translated by sqlglot), for
the product's BigQuery connection: `--db bigquery://project?endpoint=…` drives the real
google-cloud-bigquery client against it (tests/test_connect.py). It proves the client path —
sessions, parameters, jobs, the catalog — not BigQuery's semantics: the ZetaSQL runner
(sqlanon/testing/zetasql.py) stays the check of what the SQL means.

bqemulator pins an older sqlglot than sqlanon, so it runs from a virtualenv of its own, named
by SQLANON_BQEMULATOR (its python; .ci/run creates it). It needs DuckDB's spatial extension,
which the DuckDB wheel downloads at run time from a host this machine cannot reach, so the
venv installs it from the package registry (duckdb-extension-spatial).

Its translation lacks one statement form sqlanon writes: `PRIMARY KEY (…) NOT ENFORCED` (the
key relation's declaration, which BigQuery accepts and does not enforce). EMULATOR_GAPS
rewrites it away before a statement reaches the emulator, as fakesnow's nop_regexes do for
GRANT; nothing else is changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlanon.testing.postgres_server import free_port
from sqlanon.warehouse import EngineUnavailable

ENV = "SQLANON_BQEMULATOR"
PROJECT = "sqlanon-test"
EMULATOR_GAPS = ((re.compile(r",\s*PRIMARY KEY \([^)]*\) NOT ENFORCED"), ""),)


def without_gaps(sql: str) -> str:
    for pattern, replacement in EMULATOR_GAPS:
        sql = pattern.sub(replacement, sql)
    return sql


@contextmanager
def emulator() -> Iterator[str]:
    """A fresh emulator (in memory) for the duration; yields the `--db` URL that reaches it."""
    python = os.environ.get(ENV)
    if not python or not Path(python).exists():
        raise EngineUnavailable(
            f"bqemulator is not set up: {ENV} names the python of its virtualenv "
            "(.ci/run shows how to create it)"
        )
    rest, grpc = free_port(), free_port()
    ports = ["--rest-port", str(rest), "--grpc-port", str(grpc), "--project", PROJECT]
    # its log goes to a file: a pipe nobody reads would stall it once full, and reading a pipe
    # of a process still running would block
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [python, "-m", "bqemulator", "start", *ports, "--log-level", "error", "--ephemeral"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        endpoint = f"http://127.0.0.1:{rest}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(
                        f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets"
                    ):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        detail = log.read().decode(errors="replace")[-800:]
                        raise EngineUnavailable(f"bqemulator did not start: {detail}") from None
                    time.sleep(0.3)
            yield f"bigquery://{PROJECT}?endpoint={endpoint}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
