"""Where the data shipped with sqlanon lives: inside the wheel, or at the repository root.

dialects/ and examples/retail/policy.yml sit at the top of the repository (design.md) and are
force-included into the wheel under sqlanon/_data/; an editable install reads them in place.
"""

from __future__ import annotations

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
