"""Every command in the README's usage block, then every command of the docs' shell blocks,
works when followed literally, in order, from a fresh clone: run here with bash in a git
repository holding a copy of the clone's examples and policies, each line exiting 0.

Before: the retail lines used `--db shop.duckdb`, which nothing created; the adult lines
measured `adult.duckdb`, which the README's `apply` wrote to `:memory:`; `diff` named a
`policy.yml` and an `origin/main` a fresh clone does not have; and the flagship example failed
two of its own utility checks on the demo's 2,000 customers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def usage_commands() -> list[str]:
    """The README's usage block: the fenced block that starts with `sqlanon demo --db`."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```")[1::2]
    (block,) = [b for b in blocks if b.lstrip("\n").startswith("sqlanon demo --db")]
    return [line for line in block.strip().splitlines() if line.strip()]


# docs whose command blocks another test follows (they need a server or dbt profile), or that
# show output rather than commands to type
ELSEWHERE = {
    "deploy.md": "psql, duckdb, snowsql, bq and spark-sql recipes: tests/test_plain_client.py",
    "dbt.md": "dbt build needs a profile: tests/test_dbt.py builds the same project",
    "dialects.md": "a sample of the conformance matrix's output",
}
COMMANDS = ("sqlanon ", "openssl ", "git ", "SQLANON_KEY=", "tpchgen-cli ")


def docs_commands() -> list[tuple[str, str]]:
    """(file, line) for each command line of the docs' plain fenced blocks (``` without a
    language: shell), in file order."""
    out = []
    for path in sorted((REPO / "docs").glob("*.md")):
        if path.name in ELSEWHERE:
            continue
        parts = path.read_text(encoding="utf-8").split("```")
        for block in parts[1::2]:
            first, _, body = block.partition("\n")
            if first.strip():  # yaml, sql, text…: not commands
                continue
            out += [(path.name, line) for line in body.splitlines() if line.startswith(COMMANDS)]
    return out


def test_the_usage_block_names_every_command():
    from sqlanon.cli import app

    used = {line.split("sqlanon ", 1)[1].split()[0] for line in usage_commands()}
    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    assert commands - {"version"} <= used | {"demo"}, commands - used


@pytest.mark.slow
def test_every_readme_and_docs_command_works_literally(tmp_path):
    work = tmp_path / "clone"
    work.mkdir()
    for folder in ("examples", "policies"):
        shutil.copytree(REPO / folder, work / folder)
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run([*git, *args], cwd=work, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    readme = usage_commands()
    for where, line in [("README.md", line) for line in readme] + docs_commands():
        if where != "README.md" and line in readme:
            continue  # already run, in the README's order
        result = subprocess.run(
            ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, (
            f"{where}: {line}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
        )
    assert (work / "report.html").exists() and (work / "build" / "dbt").is_dir()
    assert (work / "customer.key").exists(), "the docs' lines ran too"
