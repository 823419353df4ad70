"""Where sqlanon's files live: the data shipped with it — inside the wheel, or at the
repository root — and the user's cache.

dialects/ and examples/retail/policy.yml sit at the top of the repository (design.md) and are
force-included into the wheel under sqlanon/_data/; an editable install reads them in place.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    shipped = _PACKAGE / "_data"
    if (shipped / "dialects").is_dir():
        return shipped
    repo = _PACKAGE.parent
    if (repo / "dialects").is_dir():
        return repo
    raise FileNotFoundError("sqlanon's dialects/ folder is missing from this installation")


def dialects_dir() -> Path:
    return data_root() / "dialects"


def retail_policy() -> Path:
    return data_root() / "examples" / "retail" / "policy.yml"


def assets_dir() -> Path:
    """Templates shipped inside the package: the HTML report's and the dbt project's."""
    return _PACKAGE / "assets"


CACHE_ENV = "SQLANON_CACHE_DIR"


def cache_dir() -> Path | None:
    """`$SQLANON_CACHE_DIR`, else `$XDG_CACHE_HOME/sqlanon`, else `~/.cache/sqlanon`; None when
    `SQLANON_CACHE_DIR=off`. What is kept there only ever saves time (sqlanon/output/cache.py,
    sqlanon/sql/codecache.py)."""
    configured = os.environ.get(CACHE_ENV)
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sqlanon"
