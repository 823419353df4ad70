"""Documentation that is generated or quoted must match the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sqlanon.transforms.docs import render

REPO = Path(__file__).resolve().parent.parent


def test_transforms_reference_is_current():
    assert (REPO / "docs/transforms.md").read_text() == render(), (
        "regenerate: python -m sqlanon.transforms.docs > docs/transforms.md"
    )


def test_readme_has_exactly_the_two_setup_commands_and_they_are_real():
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\$ (.+)$", quick, flags=re.M)
    assert len(commands) == 2, commands
    assert "sqlanon demo" in commands[0]
    ci = (REPO / ".ci/run").read_text()
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command in ci, "the README's test command is what CI runs"


def test_ruff_is_clean():
    result = subprocess.run(
        ["ruff", "check", "sqlanon", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    """mypy --strict on the package ([tool.mypy] in pyproject.toml); the one type checker CI
    runs, through this test."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
