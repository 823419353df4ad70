"""YAML into a tree whose every node remembers its file:line:column.

Built from PyYAML's event stream (libyaml when available) rather than from composed nodes:
duplicate keys, aliases and explicit tags are refused here, where their position is known.
Aliases are refused outright: they make a reviewed policy harder to read and are the vehicle
of alias bombs; the `rule:` mechanism is the supported way to reuse a column definition.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from yaml import events as ev
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from ..diagnostics import Diagnostic, Location, PolicyError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
MAX_DEPTH = 64
MAX_NODES = 2_000_000


@dataclass(slots=True)
class YScalar:
    value: Any  # str, int, Decimal, bool, None, date, datetime
    text: str  # the scalar exactly as written (without quotes)
    loc: Location
    quoted: bool


@dataclass(slots=True)
class YMap:
    loc: Location
    entries: dict[str, tuple[YScalar, YNode]] = field(default_factory=dict)

    def get(self, key: str) -> YNode | None:
        item = self.entries.get(key)
        return item[1] if item else None

    def key_loc(self, key: str) -> Location:
        return self.entries[key][0].loc


@dataclass(slots=True)
class YSeq:
    loc: Location
    items: list[YNode] = field(default_factory=list)


YNode = YScalar | YMap | YSeq


def describe(node: YNode | None) -> str:
    """How a node reads in an error message ('a mapping', "the string 'x'", ...)."""
    if node is None:
        return "nothing"
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    v = node.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, int | Decimal):
        return f"the number {node.text}"
    if isinstance(v, _dt.datetime | _dt.date):
        return f"the date {node.text}"
    shown = v if len(v) <= 40 else v[:37] + "..."
    return f"the string {shown!r}"


class _ScalarResolver:
    """Resolves a plain scalar's type with YAML 1.1 safe rules, numbers kept exact."""

    def __init__(self) -> None:
        self._resolver = Resolver()
        self._constructor = SafeConstructor()

    def __call__(self, text: str, plain: bool) -> Any:
        if not plain:
            return text
        tag = self._resolver.resolve(ScalarNode, text, (True, False))
        if tag == _STR_TAG:
            return text
        value = self._constructor.construct_object(ScalarNode(tag, text))
        if isinstance(value, float):
            # keep what was written: 0.1 stays exactly one tenth
            if value != value or value in (float("inf"), float("-inf")):
                return value
            return Decimal(repr(value))
        return value


def load_tree(text: str, file: str) -> YNode:
    """Parse one YAML document into a located tree, or raise PolicyError."""
    resolve = _ScalarResolver()
    errors: list[Diagnostic] = []
    stack: list[YMap | YSeq] = []
    pending_key: list[YScalar | None] = []
    root: list[YNode] = []
    documents = 0
    nodes = 0

    def loc(mark: Any) -> Location:
        return Location(file, mark.line + 1, mark.column + 1)

    def add(node: YNode) -> None:
        if not stack:
            root.append(node)
            return
        parent = stack[-1]
        if isinstance(parent, YSeq):
            parent.items.append(node)
            return
        key = pending_key[-1]
        if key is None:
            if not isinstance(node, YScalar):
                errors.append(
                    Diagnostic(
                        node.loc,
                        "a mapping key must be a plain name",
                        expected="a name such as `email:`",
                    )
                )
                pending_key[-1] = YScalar("?", "?", node.loc, False)
                return
            pending_key[-1] = node
            return
        pending_key[-1] = None
        name = key.text
        if name in parent.entries:
            first = parent.entries[name][0].loc
            errors.append(
                Diagnostic(
                    key.loc,
                    f"duplicate key '{name}'",
                    expected="each key once per mapping",
                    hint=f"the first '{name}' is at line {first.line}",
                )
            )
            return
        parent.entries[name] = (key, node)

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    errors.append(
                        Diagnostic(
                            loc(event.start_mark),
                            "a policy file holds one YAML document",
                            hint="remove the second '---' document",
                        )
                    )
                    break
                continue
            if isinstance(event, ev.AliasEvent):
                errors.append(
                    Diagnostic(
                        loc(event.start_mark),
                        f"YAML alias '*{event.anchor}' is not allowed",
                        expected="each value written out",
                        hint="reuse column definitions with a fragment's `rules:` and `rule:`",
                    )
                )
                add(YScalar(None, "", loc(event.start_mark), False))
                continue
            if isinstance(event, ev.ScalarEvent | ev.MappingStartEvent | ev.SequenceStartEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise PolicyError(
                        [
                            Diagnostic(
                                loc(event.start_mark),
                                "policy is too large",
                                expected=f"at most {MAX_NODES} YAML nodes",
                            )
                        ]
                    )
                tag = event.tag
                if tag not in (None, "!") and not (
                    isinstance(event, ev.ScalarEvent) and tag == _STR_TAG
                ):
                    errors.append(
                        Diagnostic(
                            loc(event.start_mark),
                            f"YAML tag '{tag}' is not allowed",
                            expected="plain values without tags",
                        )
                    )
            if isinstance(event, ev.ScalarEvent):
                plain = bool(event.implicit[0]) and not event.style
                value = resolve(event.value, plain) if event.tag is None else event.value
                add(YScalar(value, event.value, loc(event.start_mark), not plain))
            elif isinstance(event, ev.MappingStartEvent):
                node = YMap(loc(event.start_mark))
                add(node)
                stack.append(node)
                pending_key.append(None)
            elif isinstance(event, ev.SequenceStartEvent):
                node = YSeq(loc(event.start_mark))
                add(node)
                stack.append(node)
                pending_key.append(None)
            elif isinstance(event, ev.MappingEndEvent | ev.SequenceEndEvent):
                stack.pop()
                pending_key.pop()
            if len(stack) > MAX_DEPTH:
                raise PolicyError(
                    [
                        Diagnostic(
                            loc(event.start_mark),
                            "policy is nested too deeply",
                            expected=f"at most {MAX_DEPTH} levels",
                        )
                    ]
                )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = loc(mark) if mark is not None else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        errors.append(
            Diagnostic(
                where,
                f"YAML syntax error: {problem}",
                expected="valid YAML (check indentation and quoting)",
            )
        )
    except (yaml.YAMLError, ConstructorError, ValueError) as exc:
        errors.append(Diagnostic(Location(file, 1, 1), f"YAML could not be read: {exc}"))
    if errors:
        raise PolicyError(errors)
    if not root or (isinstance(root[0], YScalar) and root[0].value is None):
        raise PolicyError(
            [
                Diagnostic(
                    Location(file, 1, 1),
                    "the policy file is empty",
                    expected="a mapping starting with `sqlanon: 1`",
                )
            ]
        )
    return root[0]
