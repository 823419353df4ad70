"""The built wheel carries dialects/, policies/ and the retail example, and `sqlanon demo`
works from it in a fresh virtual environment (editable installs would hide a gap)."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs_the_demo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("sqlanon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "sqlanon/_data/dialects/duckdb/primitives.sql.j2",
        "sqlanon/_data/dialects/base/statements.sql.j2",
        "sqlanon/_data/dialects/conformance/pseudonymize.yml",
        "sqlanon/_data/policies/pii.yml",
        "sqlanon/_data/examples/retail/policy.yml",
        "sqlanon/_data/examples/retail/hierarchies/occupation.csv",
    ):
        assert needed in names
    env_dir = tmp_path / "venv"
    # dependencies come from this interpreter's site-packages: no network needed
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(env_dir / "bin" / "sqlanon"), "demo", "--customers", "300"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "k=5: smallest class" in result.stdout
    where = subprocess.run(
        [str(py), "-c", "import sqlanon.resources as r; print(r.data_root())"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages/sqlanon/_data" in where
