"""The folders are the architecture (docs/architecture.md): product code never loads the test
engines, and the package root holds no module that belongs in a folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlanon

PACKAGE = Path(sqlanon.__file__).parent
FOLDERS = {
    "cli",
    "demo",
    "measure",
    "output",
    "plan",
    "policy",
    "report",
    "review",
    "sql",
    "testing",
    "transforms",
    "warehouse",
}


def test_product_modules_load_no_test_engine():
    """Import every module outside sqlanon.testing in a fresh interpreter (found by file, since
    walking packages would import sqlanon.testing itself) and list what of sqlanon.testing got
    loaded on the way (ruff's banned-api rule is the static half)."""
    script = """
import importlib, json, pathlib, sys
import sqlanon
root = pathlib.Path(sqlanon.__file__).parent
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[1] in ("testing", "__main__", "_data"):
        continue
    importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
print(json.dumps(sorted(n for n in sys.modules if n.startswith("sqlanon.testing"))))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_package_root_holds_only_the_entry_points():
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules == {"__init__.py", "__main__.py", "api.py", "resources.py"}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == FOLDERS
