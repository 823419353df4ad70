"""YAML into a tree whose every node remembers its file:line:column.

Built from PyYAML's event stream (libyaml when available) rather than from composed nodes:
duplicate keys, aliases and explicit tags are refused here, where their position is known.
Aliases are refused outright: they make a reviewed policy harder to read and are the vehicle
of alias bombs; the `rule:` mechanism is the supported way to reuse a column definition.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import yaml
from yaml import events as ev
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from sqlanon.policy.diagnostics import Diagnostic, Location, PolicyError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
MAX_DEPTH = 64
MAX_NODES = 2_000_000


class _Located:
    """Nodes keep their position as plain numbers; the Location is built only when asked
    (almost never: only for errors), which keeps large policies fast to load."""

    __slots__ = ("column", "file", "line")

    file: str
    line: int
    column: int

    @property
    def loc(self) -> Location:
        return Location(self.file, self.line, self.column)


class YScalar(_Located):
    __slots__ = ("quoted", "text", "value")

    def __init__(self, value: Any, text: str, loc: Location, quoted: bool):
        self.value = value  # str, int, Decimal, bool, None, date, datetime
        self.text = text  # the scalar exactly as written (without quotes)
        self.quoted = quoted
        self.file, self.line, self.column = loc.file, loc.line, loc.column

    def __repr__(self) -> str:
        return f"YScalar({self.text!r} at {self.loc})"


class YMap(_Located):
    __slots__ = ("entries",)

    def __init__(self, loc: Location):
        self.entries: dict[str, tuple[YScalar, YNode]] = {}
        self.file, self.line, self.column = loc.file, loc.line, loc.column

    def get(self, key: str) -> YNode | None:
        item = self.entries.get(key)
        return item[1] if item else None

    def key_loc(self, key: str) -> Location:
        return self.entries[key][0].loc

    def value_loc(self, key: str) -> Location:
        """Where the value of `key` is written, or where the map is when the key is absent."""
        item = self.entries.get(key)
        return item[1].loc if item else self.loc


class YSeq(_Located):
    __slots__ = ("items",)

    def __init__(self, loc: Location):
        self.items: list[YNode] = []
        self.file, self.line, self.column = loc.file, loc.line, loc.column


def _at(cls: Any, file: str, mark: Any) -> Any:
    """A node without going through Location (the hot path)."""
    node = cls.__new__(cls)
    node.file, node.line, node.column = file, mark.line + 1, mark.column + 1
    return node


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
    if isinstance(v, int | float | Decimal):  # floats: YAML's .inf and .nan
        return f"the number {node.text}"
    if isinstance(v, _dt.datetime | _dt.date):
        return f"the date {node.text}"
    shown = v if len(v) <= 40 else v[:37] + "..."
    return f"the string {shown!r}"


# First characters of plain scalars that YAML 1.1 may read as something other than a string
# (booleans, null, numbers, dates, merge and value keys); anything else is a string.
_MAYBE_TYPED = frozenset("yYnNtTfFoO~-+.0123456789<=")


_EXPONENT_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


class _ScalarResolver:
    """Resolves a plain scalar's type with YAML 1.1 safe rules, numbers kept exact."""

    def __init__(self) -> None:
        self._resolver: Any = Resolver()  # PyYAML ships no types
        self._constructor = SafeConstructor()

    def __call__(self, text: str, plain: bool) -> Any:
        if not plain or (text and text[0] not in _MAYBE_TYPED):
            return text
        tag = self._resolver.resolve(ScalarNode, text, (True, False))
        if tag == _STR_TAG:
            # YAML 1.1 wants a dot in a float (1.0e-6); YAML 1.2 and every user also mean 1e-6
            return Decimal(text) if _EXPONENT_FLOAT.fullmatch(text) else text
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
        if type(parent) is YSeq:
            parent.items.append(node)
            return
        key = pending_key[-1]
        if key is None:
            if type(node) is not YScalar:
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
        entries = parent.entries  # type: ignore[union-attr]
        if name in entries:
            first = entries[name][0].loc
            errors.append(
                Diagnostic(
                    key.loc,
                    f"duplicate key '{name}'",
                    expected="each key once per mapping",
                    hint=f"the first '{name}' is at line {first.line}",
                )
            )
            return
        entries[name] = (key, node)

    def too_large(mark: Any) -> PolicyError:
        return PolicyError(
            [
                Diagnostic(
                    loc(mark), "policy is too large", expected=f"at most {MAX_NODES} YAML nodes"
                )
            ]
        )

    scalar_event, map_start, seq_start = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
    ends = (ev.MappingEndEvent, ev.SequenceEndEvent)
    try:
        events: Iterator[Any] = yaml.parse(text, Loader=_Loader)  # dispatched by exact class
        for event in events:
            cls = type(event)
            if cls is scalar_event:
                nodes += 1
                tag = event.tag
                plain = bool(event.implicit[0]) and not event.style
                if tag is None:
                    value = resolve(event.value, plain)
                else:
                    value = event.value
                    if tag not in ("!", _STR_TAG):
                        errors.append(
                            Diagnostic(
                                loc(event.start_mark),
                                f"YAML tag '{tag}' is not allowed",
                                expected="plain values without tags",
                            )
                        )
                scalar = _at(YScalar, file, event.start_mark)
                scalar.value, scalar.text, scalar.quoted = value, event.value, not plain
                add(scalar)
            elif cls is map_start or cls is seq_start:
                nodes += 1
                if event.tag not in (None, "!"):
                    errors.append(
                        Diagnostic(
                            loc(event.start_mark),
                            f"YAML tag '{event.tag}' is not allowed",
                            expected="plain values without tags",
                        )
                    )
                if cls is map_start:
                    node = _at(YMap, file, event.start_mark)
                    node.entries = {}
                else:
                    node = _at(YSeq, file, event.start_mark)
                    node.items = []
                add(node)
                stack.append(node)
                pending_key.append(None)
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
            elif cls in ends:
                stack.pop()
                pending_key.pop()
            elif cls is ev.AliasEvent:
                errors.append(
                    Diagnostic(
                        loc(event.start_mark),
                        f"YAML alias '*{event.anchor}' is not allowed",
                        expected="each value written out",
                        hint="reuse column definitions with a fragment's `rules:` and `rule:`",
                    )
                )
                add(YScalar(None, "", loc(event.start_mark), False))
            elif cls is ev.DocumentStartEvent:
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
            if nodes > MAX_NODES:
                raise too_large(event.start_mark)
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
