"""Typed reads of located YAML nodes that collect every error instead of stopping at one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

from sqlanon.policy.diagnostics import Diagnostic, Location, did_you_mean, one_of
from sqlanon.policy.yamltree import YMap, YNode, YScalar, YSeq, describe

Number = int | Decimal


class Checker:
    def __init__(self) -> None:
        self.errors: list[Diagnostic] = []

    def error(
        self,
        loc: Location | None,
        message: str,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.errors.append(Diagnostic(loc, message, expected, hint))

    # -- containers -------------------------------------------------------------------------

    def mapping(
        self,
        node: YNode | None,
        what: str,
        allowed: Iterable[str] = (),
        required: Iterable[str] = (),
        open_keys: bool = False,
        parent_loc: Location | None = None,
    ) -> YMap | None:
        """A mapping with only `allowed` keys (unless open_keys) and all `required` ones."""
        if not isinstance(node, YMap):
            self.error(
                node.loc if node else parent_loc,
                f"{what} must be a mapping, not {describe(node)}",
                expected="a mapping of `key: value` entries",
            )
            return None
        allowed = set(allowed) | set(required)
        if open_keys:  # the keys are names the user chose: columns, tables, groups, values
            for key, (knode, _) in node.entries.items():
                if has_control(key):
                    self.error(
                        knode.loc,
                        f"the name {key!r} in {what} must not contain control characters",
                        expected="printable text (no newlines or escape codes)",
                    )
        else:
            for key, (knode, _) in node.entries.items():
                if key not in allowed:
                    self.error(
                        knode.loc,
                        f"unknown key '{key}' in {what}",
                        expected=one_of(allowed),
                        hint=did_you_mean(key, allowed),
                    )
        for key in sorted(set(required)):
            if key not in node.entries:
                self.error(
                    parent_loc or node.loc,
                    f"{what} is missing '{key}'",
                    expected=f"a `{key}:` entry",
                )
        return node

    def seq(self, node: YNode | None, what: str) -> YSeq | None:
        if node is None:  # an absent key reads as absent; `required=` reports it
            return None
        if not isinstance(node, YSeq):
            self.error(
                node.loc,
                f"{what} must be a list, not {describe(node)}",
                expected="a list such as [a, b]",
            )
            return None
        return node

    # -- scalars ----------------------------------------------------------------------------

    def scalar(self, node: YNode | None, what: str, expected: str) -> YScalar | None:
        if node is None:  # an absent key reads as absent; `required=` reports it
            return None
        if not isinstance(node, YScalar) or node.value is None:
            self.error(
                node.loc, f"{what} must be {expected}, not {describe(node)}", expected=expected
            )
            return None
        return node

    def string(
        self, node: YNode | None, what: str, non_empty: bool = True, multiline: bool = False
    ) -> str | None:
        """A string as written; `multiline` allows line breaks and tabs (SQL text), never
        another control character."""
        if node is None:  # an absent key reads as absent; `required=` reports it
            return None
        s = self.scalar(node, what, "a string")
        if s is None:
            return None
        # a string-valued setting keeps what was written, even `yes` or `007`
        if non_empty and s.text == "":
            self.error(node.loc, f"{what} must not be empty", expected="a non-empty string")
            return None
        if has_control(s.text.replace("\n", " ") if multiline else s.text):
            self.error(
                node.loc, f"{what} must not contain control characters", expected="printable text"
            )
            return None
        return s.text

    def enum(self, node: YNode | None, what: str, choices: Iterable[str]) -> str | None:
        if node is None:  # an absent key reads as absent; `required=` reports it
            return None
        if type(node) is YScalar and node.value is not None and node.text in choices:
            return node.text  # the common case, without building any message
        choices = list(choices)
        s = self.scalar(node, what, one_of(choices))
        if s is None:
            return None
        if s.text not in choices:
            self.error(
                node.loc,
                f"'{s.text}' is not a valid {what}",
                expected=one_of(choices),
                hint=did_you_mean(s.text, choices),
            )
            return None
        return s.text

    def integer(
        self, node: YNode | None, what: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        if node is None:
            return None
        s = self.scalar(node, what, "a whole number")
        if s is None:
            return None
        v = s.value
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, Decimal) and v == v.to_integral_value():
                v = int(v)
            else:
                self.error(
                    node.loc,
                    f"{what} must be a whole number, not {describe(s)}",
                    expected="a whole number such as 4",
                )
                return None
        return v if self._in_range(node, what, v, minimum, maximum) else None

    def number(
        self,
        node: YNode | None,
        what: str,
        minimum: Number | None = None,
        maximum: Number | None = None,
        exclusive_minimum: bool = False,
    ) -> Number | None:
        if node is None:
            return None
        s = self.scalar(node, what, "a number")
        if s is None:
            return None
        v = s.value
        if isinstance(v, bool) or not isinstance(v, int | Decimal):
            self.error(
                node.loc,
                f"{what} must be a finite number, not {describe(s)}",
                expected="a number such as 10 or 2.5",
            )
            return None
        if isinstance(v, Decimal) and abs(v.adjusted()) > 30:
            self.error(node.loc, f"{what} is out of range", expected="a number within ±1e30")
            return None
        if exclusive_minimum and minimum is not None and v <= minimum:
            self.error(
                node.loc,
                f"{what} must be greater than {minimum}, not {s.text}",
                expected=f"a number > {minimum}",
            )
            return None
        lo = None if exclusive_minimum else minimum
        return v if self._in_range(node, what, v, lo, maximum) else None

    def boolean(self, node: YNode | None, what: str) -> bool | None:
        if node is None:  # an absent key reads as absent; `required=` reports it
            return None
        s = self.scalar(node, what, "true or false")
        if s is None:
            return None
        if not isinstance(s.value, bool):
            self.error(
                node.loc,
                f"{what} must be true or false, not {describe(s)}",
                expected="true or false",
            )
            return None
        return s.value

    def string_list(
        self, node: YNode | None, what: str, allow_single: bool = False
    ) -> list[tuple[str, Location]]:
        if node is None:
            return []
        if allow_single and isinstance(node, YScalar):
            s = self.string(node, what)
            return [(s, node.loc)] if s is not None else []
        seq = self.seq(node, what)
        if seq is None:
            return []
        out = []
        for item in seq.items:
            s = self.string(item, f"an entry of {what}")
            if s is not None:
                out.append((s, item.loc))
        return out

    def _in_range(
        self, node: YNode, what: str, v: Number, lo: Number | None, hi: Number | None
    ) -> bool:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            lo_s = "" if lo is None else f"≥ {lo}"
            hi_s = "" if hi is None else f"≤ {hi}"
            rng = " and ".join(x for x in (lo_s, hi_s) if x)
            self.error(node.loc, f"{what} is {v}, out of range", expected=f"a number {rng}")
            return False
        return True


def has_control(text: str) -> bool:
    """Control characters other than a tab: text holding them (a newline, an escape code)
    reads differently in a reviewed diff or a terminal than what runs, so policies may not
    contain them."""
    return _CONTROL.search(text) is not None


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def relation_name(chk: Checker, node: YNode | None, what: str) -> tuple[str, ...] | None:
    """`schema.table` / `catalog.schema.table`, or a list of parts for names holding dots."""
    if node is None:
        return None
    if isinstance(node, YSeq):
        parts = [p for p, _ in chk.string_list(node, what)]
        if len(parts) != len(node.items):
            return None
    else:
        text = chk.string(node, what)
        if text is None:
            return None
        parts = text.split(".")
    if any(has_control(p) for p in parts):
        chk.error(
            node.loc,
            f"{what} must not contain control characters",
            expected="printable text (no newlines or escape codes)",
        )
        return None
    if not 2 <= len(parts) <= 3 or any(p == "" for p in parts):
        chk.error(
            node.loc,
            f"{what} must name [catalog.]schema.table",
            expected="`schema.table` or `catalog.schema.table` (a list of parts for names "
            "containing dots)",
        )
        return None
    return tuple(parts)
