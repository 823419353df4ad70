"""The pre-commit hooks run as declared: each entry, with the args a user gives it, passes on
the committed example and fails (exit 1) once the generated output is stale."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
HOOKS = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}


def _run(entry: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    program, *rest = shlex.split(entry)
    assert program == "sqlanon"
    return subprocess.run(
        [sys.executable, "-m", "sqlanon", *rest, *args], cwd=cwd, capture_output=True, text=True
    )


def test_hooks_are_declared_for_pre_commit():
    assert set(HOOKS) == {"sqlanon-validate", "sqlanon-compile-check"}
    for hook in HOOKS.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False


def test_validate_hook(workdir):
    ok = _run(
        HOOKS["sqlanon-validate"]["entry"], ["policies/", "examples/retail/policy.yml"], workdir
    )
    assert ok.returncode == 0, ok.stderr
    policy = workdir / "examples/retail/policy.yml"
    policy.write_text(policy.read_text().replace("transform: prefix", "transform: prefx"))
    bad = _run(HOOKS["sqlanon-validate"]["entry"], ["examples/retail/policy.yml"], workdir)
    assert bad.returncode == 2 and "did you mean 'prefix'" in bad.stderr


def test_compile_check_hook(workdir):
    args = ["examples/retail/policy.yml", "--dialect", "all", "--out", "examples/retail/build"]
    entry = HOOKS["sqlanon-compile-check"]["entry"]
    subprocess.run(
        [sys.executable, "-m", "sqlanon", "compile", *args],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    assert _run(entry, args, workdir).returncode == 0
    policy = workdir / "examples/retail/policy.yml"
    policy.write_text(policy.read_text().replace("length: 3}", "length: 2}"))
    stale = _run(entry, args, workdir)
    assert stale.returncode == 1 and "stale" in stale.stdout + stale.stderr
