"""A throwaway PostgreSQL server for the tests and `sqlanon conformance`, started from the
machine's binaries in a temporary directory on a free port — as the `postgres` OS user when
this process is root (PostgreSQL refuses to run as root) — and stopped at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUPERUSER = "sqlanon"


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says why."""


def _binaries() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise ServerUnavailable("pg_ctl and initdb not found on PATH or in /usr/lib/postgresql/*/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_server() -> Iterator[str]:
    """Start a throwaway server and yield its DSN."""
    bindir = _binaries()
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        if shutil.which("runuser") is None:
            raise ServerUnavailable("running as root and `runuser` is missing")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root and there is no `postgres` OS user") from None
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="sqlanon-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_root:
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    port = free_port()

    def run(*cmd: str) -> None:
        result = subprocess.run([*prefix, *cmd], capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerUnavailable(f"{cmd[0]} failed: {result.stderr.strip()[-400:]}")

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        # a test that leaves a transaction open must fail the test waiting on its locks, not
        # hang the suite: no lock is waited on for more than two minutes
        options = (
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c lock_timeout=120s"
        )
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        yield f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
