"""Reading policy files: bytes to a located tree, the format version, and which files a
command names."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlanon.policy.check import Checker
from sqlanon.policy.diagnostics import Location, PolicyError, display_path
from sqlanon.policy.model import FORMAT_VERSION
from sqlanon.policy.yamltree import YMap, YNode, YScalar, describe, load_tree


def read_tree(
    path: Path, display: str, chk: Checker, data: bytes | None = None
) -> tuple[YNode, str] | None:
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            chk.error(None, f"policy file '{display}' not found", expected="an existing YAML file")
            return None
        except OSError as exc:
            chk.error(
                None,
                f"policy file '{display}' cannot be read: {exc.strerror}",
                expected="a readable YAML file",
            )
            return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        chk.error(
            Location(display, 1, 1),
            f"policy file is not UTF-8 ({exc.reason} at byte {exc.start})",
            expected="a UTF-8 text file",
        )
        return None
    try:
        tree = load_tree(text, display)
    except PolicyError as exc:
        chk.errors.extend(exc.diagnostics)
        return None
    return tree, hashlib.sha256(data).hexdigest()


def check_format_version(chk: Checker, root: YMap) -> None:
    node = root.get("sqlanon")
    if node is None:
        return
    if not (
        isinstance(node, YScalar)
        and node.value == FORMAT_VERSION
        and not isinstance(node.value, bool)
    ):
        chk.error(
            node.loc,
            f"unsupported policy format version {describe(node)}",
            expected=f"`sqlanon: {FORMAT_VERSION}`",
            hint="this version of sqlanon reads format 1",
        )


def is_fragment(path: Path) -> bool:
    """Cheap sniff: a fragment declares `fragment:` at the top level."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("fragment:") for line in head.splitlines())


def expand(paths: list[str]) -> list[tuple[Path, str]]:
    """Files named, with folders expanded to their *.yml / *.yaml files in name order."""
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for child in sorted(list(p.glob("*.yml")) + list(p.glob("*.yaml"))):
                out.append((child, display_path(child)))
        else:
            out.append((p, display_path(p)))
    return out
