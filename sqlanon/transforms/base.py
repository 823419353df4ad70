"""What a transform is: its parameters, the types it accepts, its privacy class, and how it
lowers to primitives. One module per transform; docs/transforms.md is generated from them."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlanon.plan.model import OTHER, ColumnStep, InputFile, KeyRef
from sqlanon.plan.types import ALL_TYPES
from sqlanon.policy.check import Checker
from sqlanon.policy.yamltree import YNode, YScalar, YSeq, describe
from sqlanon.sql.shapes import Sql

if TYPE_CHECKING:  # a runtime import would be a cycle: the dialect module imports transforms
    from sqlanon.sql.dialect import Dialect
    from sqlanon.sql.shared import Shared

# -- parameter kinds --------------------------------------------------------------------------


class Kind:
    doc: str = ""

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Kind):
    minimum: int | None = None
    maximum: int | None = None

    @property
    def doc(self) -> str:  # type: ignore[override]
        lo = "" if self.minimum is None else f" ≥ {self.minimum}"
        hi = "" if self.maximum is None else f" ≤ {self.maximum}"
        return f"whole number{lo}{',' if lo and hi else ''}{hi}"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        return chk.integer(node, what, self.minimum, self.maximum)


@dataclass(frozen=True)
class Number(Kind):
    minimum: int | None = None
    exclusive_minimum: bool = False

    @property
    def doc(self) -> str:  # type: ignore[override]
        if self.minimum is None:
            return "number"
        return f"number {'>' if self.exclusive_minimum else '≥'} {self.minimum}"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        return chk.number(node, what, self.minimum, None, self.exclusive_minimum)


@dataclass(frozen=True)
class Numbers(Kind):
    min_items: int = 2
    doc: str = "list of increasing numbers"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        seq = chk.seq(node, what)
        if seq is None:
            return None
        read = [chk.number(item, f"an entry of {what}") for item in seq.items]
        values = [v for v in read if v is not None]
        if len(values) != len(read):
            return None
        if len(values) < self.min_items:
            chk.error(
                node.loc,
                f"{what} needs at least {self.min_items} numbers",
                expected=f"a list of {self.min_items} or more increasing numbers",
            )
            return None
        for item, a, b in zip(seq.items[1:], values, values[1:], strict=False):
            if not b > a:
                chk.error(
                    item.loc,
                    f"{what} must increase: {b} follows {a}",
                    expected="strictly increasing numbers",
                    hint="sort the list",
                )
                return None
        return tuple(values)


@dataclass(frozen=True)
class Text(Kind):
    doc: str = "text"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        return chk.string(node, what, non_empty=False)


@dataclass(frozen=True)
class Name(Kind):
    """A key or role name: letters, digits, underscore, dash, dot."""

    doc: str = "name"

    def read(self, chk: Checker, node: YNode | None, what: str) -> Any:
        s = chk.string(node, what)
        if s is None or node is None:
            return None
        if not all(ch.isalnum() or ch in "_-." for ch in s) or len(s) > 128:
            chk.error(
                node.loc,
                f"{what} '{s}' is not a valid name",
                expected="letters, digits, '_', '-' or '.', at most 128 characters",
            )
            return None
        return s


@dataclass(frozen=True)
class Char(Kind):
    doc: str = "a single character"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        s = chk.string(node, what)
        if s is None:
            return None
        if len(s) != 1:
            chk.error(
                node.loc,
                f"{what} must be exactly one character, not {describe(node)}",
                expected='one character such as "*"',
            )
            return None
        return s


@dataclass(frozen=True)
class Bool(Kind):
    doc: str = "true or false"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        return chk.boolean(node, what)


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...] = ()

    @property
    def doc(self) -> str:  # type: ignore[override]
        return " | ".join(self.choices)

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        return chk.enum(node, f"value for {what}", self.choices)


@dataclass(frozen=True)
class Scalar(Kind):
    doc: str = "text, number or boolean"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        s = chk.scalar(node, what, self.doc)
        if s is None:
            return None
        if isinstance(s.value, bool | int | Decimal):
            return s.value
        if isinstance(s.value, str):
            return chk.string(node, what, non_empty=False)
        chk.error(
            node.loc,
            f"{what} must be text, a number or a boolean, not {describe(node)}",
            expected=self.doc,
            hint="quote it to use it as text",
        )
        return None


@dataclass(frozen=True)
class DateOrToday(Kind):
    doc: str = "a date (YYYY-MM-DD) or `today`"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        s = chk.scalar(node, what, self.doc)
        if s is None:
            return None
        if s.value == "today":
            return "today"
        if isinstance(s.value, _dt.date) and not isinstance(s.value, _dt.datetime):
            return s.value
        chk.error(
            node.loc, f"{what} must be a date or `today`, not {describe(node)}", expected=self.doc
        )
        return None


@dataclass(frozen=True)
class HierarchySource(Kind):
    """An ARX-style CSV path, or an inline mapping value → [level 1, level 2, ...]."""

    doc: str = "a CSV path (relative to the policy file) or a mapping value → [level 1, ...]"

    def read(self, chk: Checker, node: YNode, what: str) -> Any:
        if isinstance(node, YScalar):
            path = chk.string(node, what)
            return None if path is None else ("file", path)
        m = chk.mapping(node, what, open_keys=True)
        if m is None:
            return None
        rows: list[tuple[str, ...]] = []
        for key, (knode, value) in m.entries.items():
            if isinstance(value, YSeq):
                levels = [
                    chk.string(v, f"a level of '{key}'", non_empty=False) for v in value.items
                ]
            else:
                levels = [chk.string(value, f"the generalization of '{key}'", non_empty=False)]
            if any(lv is None for lv in levels):
                return None
            if not levels:
                chk.error(
                    knode.loc,
                    f"'{key}' has no generalization levels",
                    expected="a value or a list of values, one per level",
                )
                return None
            rows.append((key, *levels))  # type: ignore[arg-type]
        return ("inline", tuple(rows))


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    doc: str
    required: bool = False
    default: Any = None


# -- contexts ---------------------------------------------------------------------------------


@dataclass
class ColumnContext:
    """What a transform's checks can see of the column being defined."""

    chk: Checker
    column: str
    node: YNode  # the column's key in the policy
    params: dict[str, YNode]  # each parameter's value node
    input_type: str
    type_declared: bool
    base_dirs: dict[str, Path]  # per parameter: directory of the file that set it
    inputs: list[InputFile] = field(default_factory=list)

    def error(
        self, param: str | None, message: str, expected: str | None = None, hint: str | None = None
    ) -> None:
        node = self.params.get(param, self.node) if param else self.node
        loc = node.loc
        self.chk.error(loc, f"column '{self.column}': {message}", expected, hint)


class LookupJoins(Protocol):
    """Where a view joins lookup relations (sqlanon/sql/lookups.py): a large value →
    replacement table is data the engine joins, not a CASE of thousands of literals."""

    def join(self, step: ColumnStep, key: Callable[[Sql], Sql]) -> Sql:
        """The replacement of each row's value: `key(source column)` is matched against the
        step's lookup pairs; NULL where no pair matches."""
        ...


@dataclass
class LowerContext:
    """What lowering gives a transform: the dialect, the padded keys of each key, and (in a
    view) where values an expression uses more than once are computed once."""

    dialect: Dialect
    key_pads: dict[KeyRef, tuple[Sql, Sql]]
    shared: Shared | None = None
    # (in a view) joins a value → replacement relation to the source rows; None elsewhere
    lookups: LookupJoins | None = None

    def let(self, value: Sql, name: str) -> Sql:
        """`value`, named `name` (a hint: made unique) and computed once where the query has
        a place for shared values (a view's step CTEs, sqlanon/sql/shared.py); else `value`
        itself. For a value a transform's expression uses more than once."""
        if self.shared is None:
            return value
        return self.shared.add(value, name)


# -- the transform contract -------------------------------------------------------------------

# a column's value → output pairs (a hierarchy at its level), when its transform has them
Pairs = tuple[tuple[str, str], ...] | None
# every value a transform's output may take, as canonical texts; None when not fixed
Domain = tuple[str, ...] | None


class Transform:
    name: ClassVar[str]
    summary: ClassVar[str]
    nulls: ClassVar[str]
    types_doc: ClassVar[str]
    example: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    accepts: ClassVar[tuple[str, ...]] = ALL_TYPES
    default_type: ClassVar[str] = "text"
    privacy_class: ClassVar[str] = OTHER
    uses_key: ClassVar[bool] = False
    # works on the value's canonical text, so an undeclared `type:` on a non-text column means
    # the engine's own text of it, which differs between engines (drift and apply warn)
    reads_canonical_text: ClassVar[bool] = False
    # -- facts the review and measurement tools read (tests/test_transform_facts.py) --
    # how much of a value passes: 0 nothing (drop) … 5 all of it (keep); `diff` calls a move
    # to a higher rank weakened, to a lower one strengthened
    disclosure: ClassVar[int]
    # may be a release's group_by column (its output is a coarse, public-able category)
    groupable: ClassVar[bool] = False
    # the output sorts like the input (utility's rank correlation is meaningful)
    keeps_order: ClassVar[bool] = False
    # parameter → +1 when a larger value discloses more, -1 when it discloses less (`diff`)
    larger_discloses_more: ClassVar[tuple[tuple[str, int], ...]] = ()

    def normalize(self, p: dict[str, Any], ctx: ColumnContext) -> dict[str, Any] | None:
        """Cross-parameter checks; returns the parameters the plan records (None on error)."""
        return p

    def lookup(self, p: dict[str, Any], ctx: ColumnContext) -> tuple[tuple[str, str], ...] | None:
        return None

    def lookup_table(self, step: ColumnStep) -> bool:
        """Whether a view's file deploys this step's lookup pairs as a table beside the view
        (too many to inline in the view's SQL, sqlanon/sql/lookups.py)."""
        return False

    def output_type(self, input_type: str, p: dict[str, Any]) -> str | None:
        return input_type

    def domain(self, p: dict[str, Any], output_type: str, lookup: Pairs = None) -> Domain:
        """Every value the output may take (canonical texts), when the parameters alone fix
        it (a synthetic table's public domain; `lookup` is the column's value → output pairs,
        for transforms that have them); None when they do not."""
        return None

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        raise NotImplementedError


REGISTRY: dict[str, Transform] = {}


def register(cls: type[Transform]) -> type[Transform]:
    REGISTRY[cls.name] = cls()
    return cls
