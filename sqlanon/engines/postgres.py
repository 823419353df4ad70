"""PostgreSQL: a private server started from the machine's binaries, or SQLANON_PG_DSN.

The server runs in a temporary directory on a free port, as the `postgres` OS user when this
process is root (PostgreSQL refuses to run as root), and is stopped at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..sqlgen import Sql
from .common import SessionSettings

DIALECT = "postgres"
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


def _free_port() -> int:
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
    port = _free_port()

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


class PostgresEngine(SessionSettings):
    dialect = DIALECT

    def __init__(self, dsn: str):
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)

    def placeholder(self) -> Sql:
        return Sql("%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        # without parameters the text is sent as is: a '%' in a literal needs no escaping
        self.conn.execute(sql, list(params) if params else None)  # type: ignore[arg-type]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql, list(params) if params else None)  # type: ignore[arg-type]
        return cur.fetchall()

    def columns(self, relation: tuple[str, ...]) -> list[tuple[str, str]]:
        rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (relation[-2], relation[-1]),
        )
        return [(r[0], r[1]) for r in rows]

    def load_rows(self, relation: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Append rows to an existing table with COPY (values adapted by psycopg)."""
        from psycopg import sql

        target = sql.Identifier(*relation)
        with self.conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self.conn.close()
