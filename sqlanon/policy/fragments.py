"""Fragments: files with `fragment:` instead of `name:`, holding named column `rules` that
policies `include` and use with `{rule: name}`, overriding parameters where needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlanon.plan.model import InputFile
from sqlanon.policy.check import Checker
from sqlanon.policy.diagnostics import Location, display_path
from sqlanon.policy.files import check_format_version, read_tree
from sqlanon.policy.yamltree import YMap, YNode

FRAGMENT_KEYS = ("sqlanon", "fragment", "description", "include", "rules")

MAX_INCLUDE_DEPTH = 16


@dataclass
class Rule:
    name: str
    node: YNode
    base_dir: Path
    loc: Location


@dataclass
class Loaded:
    """Everything read while loading one policy, shared with its includes."""

    chk: Checker = field(default_factory=Checker)
    rules: dict[str, Rule] = field(default_factory=dict)
    inputs: list[InputFile] = field(default_factory=list)


def include_fragments(
    chk: Checker, root: YMap, base: Path, loaded: Loaded, stack: tuple[Path, ...]
) -> None:
    node = root.get("include")
    if node is None:
        return
    seen: set[Path] = set()
    for rel, loc in chk.string_list(node, "include", allow_single=True):
        path = (base / rel).resolve()
        display = display_path(path)
        if path in seen:
            chk.error(loc, f"'{rel}' is included twice", expected="each fragment included once")
            continue
        seen.add(path)
        if path in stack:
            chk.error(
                loc,
                f"include cycle: '{rel}' includes itself",
                expected="fragments that do not include each other in a loop",
            )
            continue
        if len(stack) > MAX_INCLUDE_DEPTH:
            chk.error(loc, "includes are nested too deeply", expected=f"≤ {MAX_INCLUDE_DEPTH}")
            continue
        if not path.exists():
            chk.error(
                loc,
                f"included file '{rel}' not found",
                expected="a path relative to this file",
                hint=f"looked for {display}",
            )
            continue
        read_fragment(path, display, loaded, (*stack, path), loc)


def read_fragment(
    path: Path, display: str, loaded: Loaded, stack: tuple[Path, ...], include_loc: Location | None
) -> None:
    chk = loaded.chk
    read = read_tree(path, display, chk)
    if read is None:
        return
    tree, sha = read
    loaded.inputs.append(InputFile(display, sha, "fragment"))
    root = chk.mapping(tree, "a fragment", FRAGMENT_KEYS, required=("sqlanon", "fragment"))
    if root is None:
        return
    if root.get("fragment") is None and include_loc is not None:
        chk.error(include_loc, f"'{display}' is not a fragment", expected="a file with `fragment:`")
        return
    check_format_version(chk, root)
    include_fragments(chk, root, path.parent, loaded, stack)
    rules = root.get("rules")
    if rules is None:
        return
    m = chk.mapping(rules, "rules", open_keys=True)
    if m is None:
        return
    for name, (knode, value) in m.entries.items():
        if name in loaded.rules:
            first = loaded.rules[name].loc
            chk.error(
                knode.loc,
                f"rule '{name}' is defined twice",
                expected="rule names unique across included fragments",
                hint=f"the other is at {first}",
            )
            continue
        loaded.rules[name] = Rule(name, value, path.parent, knode.loc)
