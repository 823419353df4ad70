"""Composing SQL from dialect templates without ever pasting user text into a template.

A template (a jinja2 macro in dialects/<name>/) is rendered once per *shape*: every argument
becomes a sentinel identifier, the text is parsed back by sqlglot in the dialect (a template
that does not parse, or that swallows a sentinel into a string, is a compiler bug), and the
verified text is cut into pieces around the sentinels. Filling a shape joins the pieces with
argument fragments. Arguments are either atoms — identifiers and literals quoted by sqlglot,
each checked to tokenize back to exactly the value given — or fragments from other shapes,
parenthesized unless they are syntactically atomic. A statement is therefore valid SQL because
each shape parsed with identifiers in its holes and every hole receives one token or one
parenthesized expression; tests additionally parse every emitted statement whole.

A *list* shape renders a select list (`e AS name, …`), verified to parse as exactly one item
per element of its first argument; its fragment is accepted only by a hole that is itself an
item of a select list. A view's column lists are such fragments, so the view's own shape does
not depend on how many columns it has: a policy of a thousand tables builds a few dozen shapes
per dialect, not one per table (the parse of a shape is most of a fresh lowering). A list of more
than three items is parsed only if the template's text for it is not its 2-item shape repeated
(ShapeCache._periodic), the 2- and 3-item shapes being parsed.

This keeps compile time linear and small (no per-statement parse), see docs/architecture.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

_SENTINEL = "__sqlanon_{}__"
# names whose quoted form is the name between the dialect's quotes (ShapeCache.identifier)
_PLAIN = re.compile(r"[A-Za-z0-9_.]+")
_PLAIN_SAMPLE = "aZ_09.x"
_SENTINEL_RE = re.compile(r"__sqlanon_(\d+)__")
# Roots that need no parentheses when placed inside another expression.
_ATOMIC_ROOTS = (
    exp.Func,
    exp.Column,
    exp.Literal,
    exp.Paren,
    exp.Case,
    exp.Identifier,
    exp.Boolean,
    exp.Null,
    exp.Subquery,
    exp.Star,
)
# Holes whose parent delimits them (argument lists, CASE parts, select lists, clauses) take any
# expression bare; elsewhere (operators) a compound argument is parenthesized.
_DELIMITING_PARENTS = (
    exp.Func,
    exp.If,
    exp.Case,
    exp.Alias,
    exp.Select,
    exp.Where,
    exp.Paren,
    exp.Tuple,
    exp.Create,
    exp.Order,
    exp.Ordered,
    exp.Group,
    exp.Window,
    exp.Having,
    exp.Values,
    exp.Subquery,
)


class CompilerBug(Exception):
    """Generated SQL failed a self-check. Never the user's fault; report it."""


class Sql(NamedTuple):
    """A fragment of SQL text for one dialect. `atomic` fragments need no parentheses; None
    marks a select list (several items), which only a select list's item slot takes.
    (A named tuple: millions are made for a large policy, and tuples are cheap to build.)"""

    text: str
    atomic: bool | None = True

    def __str__(self) -> str:
        return self.text


# How a hole takes a compound argument: parenthesized (an operator's operand), bare (a slot its
# parent delimits), or bare and also a select list's item slot, where a list fragment may go.
OPERAND, DELIMITED, ITEM = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Shape:
    first: str  # the text before the first hole
    # per hole: (argument index, OPERAND / DELIMITED / ITEM,
    #            leading whitespace of the hole's line, the text after the hole)
    holes: tuple[tuple[int, int, str, str], ...]
    atomic: bool | None

    def text(self) -> str:
        """The template's text this shape was cut from (its holes as sentinels)."""
        return self.first + "".join(_SENTINEL.format(h[0]) + h[3] for h in self.holes)

    def fill(self, args: Sequence[Sql]) -> Sql:
        out = [self.first]
        append = out.append
        for slot, bare, indent, piece in self.holes:
            text, atomic = args[slot]
            if atomic is not True:
                if atomic is None:
                    if bare != ITEM:
                        raise CompilerBug(f"a select list placed outside a select list: {text}")
                elif not bare:
                    text = "(" + text + ")"
            if indent and "\n" in text:
                text = text.replace("\n", "\n" + indent)
            append(text)
            append(piece)
        return Sql("".join(out), self.atomic)


def _cut(pieces: Sequence[str], holes: Sequence[tuple[int, int]], atomic: bool | None) -> Shape:
    """The shape of a text cut at its holes: `pieces` the text around them, `holes` each one's
    (argument index, OPERAND / DELIMITED / ITEM)."""
    indents = []
    line = ""  # the text of the current line so far (earlier holes count as text)
    for piece in pieces[:-1]:
        line = (line + piece).rsplit("\n", 1)[-1]
        indents.append(line[: len(line) - len(line.lstrip(" "))])
        line += "x"
    return Shape(
        pieces[0],
        tuple(
            (slot, bare, indent, piece)
            for (slot, bare), indent, piece in zip(holes, indents, pieces[1:], strict=True)
        ),
        atomic,
    )


# one item of a list shape: per hole (which list, its kind, the text after it), the text
# after the item's last hole between two items, and after the last item
ItemPattern = tuple[tuple[tuple[int, int, str], ...], str, str]


def _item_pattern(two: Shape) -> ItemPattern | None:
    """How the 2-item list `two` repeats per item, or None if its two items differ."""
    k = len(two.holes) // 2
    if k == 0 or len(two.holes) != 2 * k:
        return None
    first, second = two.holes[:k], two.holes[k:]
    item = []
    for j, ((a, kind, _, piece), (b, kind2, _, piece2)) in enumerate(
        zip(first, second, strict=True)
    ):
        if a % 2 or b != a + 1 or kind != kind2 or (j < k - 1 and piece != piece2):
            return None
        item.append((a // 2, kind, piece))
    return tuple(item), first[-1][3], second[-1][3]


def _repeated(first: str, pattern: ItemPattern, n: int) -> Shape:
    """The list shape of n items that repeats `pattern` (its argument i of item m is element m
    of list i: sentinel i·n + m)."""
    item, between, end = pattern
    pieces = [first]
    holes: list[tuple[int, int]] = []
    for m in range(n):
        for j, (arg, kind, piece) in enumerate(item):
            holes.append((arg * n + m, kind))
            last = j == len(item) - 1
            pieces.append(piece if not last else between if m < n - 1 else end)
    return _cut(pieces, holes, None)


def _flatten(values: Sequence[Any]) -> tuple[Sequence[Sql], tuple[Any, ...]]:
    """Arguments in order plus the arity signature (None for one, n for a list of n)."""
    if all(type(v) is Sql for v in values):
        return values, (None,) * len(values)
    flat: list[Sql] = []
    arity: list[Any] = []
    for v in values:
        if isinstance(v, Sql):
            flat.append(v)
            arity.append(None)
        elif isinstance(v, list | tuple) and all(isinstance(x, Sql) for x in v):
            flat.extend(v)
            arity.append(len(v))
        else:
            raise CompilerBug(f"template argument must be Sql or a list of Sql, not {v!r}")
    return flat, tuple(arity)


def _sentinels(arity: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    n = 0
    for a in arity:
        if a is None:
            out.append(_SENTINEL.format(n))
            n += 1
        else:
            out.append([_SENTINEL.format(n + i) for i in range(a)])
            n += a
    return out


def _check_structure(value: Any) -> None:
    """Structural template parameters choose a shape; they may never carry user text."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return
    if isinstance(value, tuple):
        for v in value:
            _check_structure(v)
        return
    raise CompilerBug(f"structural template parameter {value!r} is not a plain word or number")


def _hole_kind(ident: exp.Expression) -> int:
    node: exp.Expression = (
        ident.parent if isinstance(ident.parent, exp.Column | exp.Table) else ident
    )
    parent = node.parent
    if parent is None or isinstance(parent, exp.Binary | exp.Unary):
        return OPERAND
    if isinstance(parent, exp.Select) and node.arg_key == "expressions":
        return ITEM
    if isinstance(parent, exp.In):
        return DELIMITED if node.arg_key == "expressions" else OPERAND
    return DELIMITED if isinstance(parent, _DELIMITING_PARENTS) else OPERAND


class ShapeCache:
    """Renders, verifies and caches template shapes for one sqlglot dialect."""

    def __init__(self, sqlglot_dialect: str, macros: dict[str, Callable[..., str]]):
        self.dialect = sqlglot_dialect
        self.macros = macros
        self._shapes: dict[tuple[Any, ...], Shape] = {}
        self._sg = sqlglot.Dialect.get_or_raise(sqlglot_dialect)
        # a plain name (letters, digits, _ and .) is quoted by writing it between the
        # dialect's quotes: a policy of 1,000 tables quotes thousands of distinct table names,
        # and sqlglot's quoting with its read-back was a tenth of lowering. The quotes are
        # learned from sqlglot and the shortcut checked against it for a sample name.
        self._quotes: tuple[str, str] | None = None
        open_, _, close = self._quoted("a").partition("a")
        if self._quoted(_PLAIN_SAMPLE) == open_ + _PLAIN_SAMPLE + close:
            self._quotes = (open_, close)

    def call(self, name: str, args: Sequence[Any], structure: dict[str, Any], kind: str) -> Sql:
        """`kind`: "expression", "statement" or "list" (a select list, one item per element
        of the first argument)."""
        arity: int | tuple[Any, ...]
        for v in args:
            if type(v) is not Sql:
                flat, arity = _flatten(args)
                key: tuple[Any, ...] = (name, arity, *structure.items())
                break
        else:  # the common case: every argument one fragment, the arity is their count
            flat, arity = args, len(args)
            key = (name, arity, *structure.items()) if structure else (name, arity)
        shape = self._shapes.get(key)
        if shape is None:
            arities = (None,) * arity if isinstance(arity, int) else arity
            shape = self._shape(name, arities, structure, kind)
            self._shapes[key] = shape
        return shape.fill(flat)

    def _shape(
        self, name: str, arity: tuple[Any, ...], structure: dict[str, Any], kind: str
    ) -> Shape:
        if kind == "list" and len(set(arity)) == 1 and isinstance(arity[0], int):
            n = arity[0]
            if n > 3 and (found := self._periodic(name, len(arity), n, structure)) is not None:
                return found
        return self._build(name, arity, structure, kind)

    def _periodic(self, name: str, lists: int, n: int, structure: dict[str, Any]) -> Shape | None:
        """A list of n items (each argument a list of n) without parsing it: a view's select
        lists have as many lengths as the policy has column counts, and parsing each length's
        shape was a tenth of lowering. The lists of 2 and 3 items are parsed as usual; when
        the 2-item shape repeats per item (the same text between holes, each item's holes
        reading its own element of each list) and so gives the 3-item shape exactly, and the
        template's text for n items is that repetition too, the n-item list is the same
        grammar repeated: item, separator, item. Else None, and the list is parsed."""
        two, three = (self.call_shape(name, (m,) * lists, structure, "list") for m in (2, 3))
        pattern = _item_pattern(two)
        if pattern is None or _repeated(two.first, pattern, 3) != three:
            return None
        shape = _repeated(two.first, pattern, n)
        # `structure` was checked when the 2-item shape was built (_build)
        text = str(self.macros[name](*_sentinels((n,) * lists), **structure)).strip()
        return shape if text == shape.text() else None

    def call_shape(
        self, name: str, arity: tuple[Any, ...], structure: dict[str, Any], kind: str
    ) -> Shape:
        """The (cached) shape of template `name` for these argument arities."""
        key: tuple[Any, ...] = (name, arity, *structure.items())
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = self._shape(name, arity, structure, kind)
        return shape

    def _build(
        self, name: str, arity: tuple[Any, ...], structure: dict[str, Any], kind: str
    ) -> Shape:
        macro = self.macros.get(name)
        if macro is None:
            raise CompilerBug(f"dialect {self.dialect} has no template '{name}'")
        for v in structure.values():
            _check_structure(v)
        text = str(macro(*_sentinels(arity), **structure)).strip()
        where = f"template '{name}' ({self.dialect}, {structure})"
        statement = kind == "statement"
        try:
            tree: exp.Expr
            if kind == "list":
                tree = self._parse_list(text, arity[0] if arity else None, where)
            elif statement:
                trees = [t for t in sqlglot.parse(text, read=self.dialect) if t is not None]
                if len(trees) != 1:
                    raise CompilerBug(f"{where} must render exactly one statement:\n{text}")
                tree = trees[0]
            else:
                # parsed where an expression belongs: at statement level some dialects read a
                # leading keyword differently (BigQuery's REPEAT starts a loop)
                select = sqlglot.parse_one(f"SELECT {text}", read=self.dialect)
                if not isinstance(select, exp.Select) or len(select.expressions) != 1:
                    raise CompilerBug(f"{where} is not a single expression:\n{text}")
                tree = select.expressions[0]
        except (ParseError, TokenError) as exc:
            raise CompilerBug(f"{where} does not parse: {exc}\n{text}") from exc
        expected: dict[str, int] = {}
        for m in _SENTINEL_RE.finditer(text):
            expected[m.group(0)] = expected.get(m.group(0), 0) + 1
        found: dict[str, int] = {}
        kind_by_arg: dict[int, int] = {}
        if isinstance(tree, exp.Command):
            raise CompilerBug(
                f"{where} is not understood by sqlglot's {self.dialect} parser "
                f"(parsed as an opaque command):\n{text}"
            )
        for ident in tree.find_all(exp.Identifier, exp.Var):
            sentinel = _SENTINEL_RE.fullmatch(str(ident.this))
            if sentinel:
                found[ident.this] = found.get(ident.this, 0) + 1
                index = int(sentinel.group(1))
                # an argument in several holes takes the most careful of their forms
                kind_by_arg[index] = min(kind_by_arg.get(index, ITEM), _hole_kind(ident))
        if found != expected:
            raise CompilerBug(f"{where}: an argument landed outside an expression slot:\n{text}")
        parts = _SENTINEL_RE.split(text)
        pieces = tuple(parts[0::2])
        slots = tuple(int(p) for p in parts[1::2])
        atomic = None if kind == "list" else isinstance(tree, _ATOMIC_ROOTS) and not statement
        return _cut(pieces, [(slot, kind_by_arg[slot]) for slot in slots], atomic)

    def _parse_list(self, text: str, items: Any, where: str) -> exp.Expr:
        """A list template's text read as a select list: exactly one item per element of the
        first argument, and nothing after the list (no FROM, no clause)."""
        if not isinstance(items, int) or items < 1:
            raise CompilerBug(f"{where}: a list template's first argument is a non-empty list")
        select = sqlglot.parse_one(f"SELECT {text}", read=self.dialect)
        clauses = [k for k, v in select.args.items() if v and k != "expressions"]
        if not isinstance(select, exp.Select) or clauses or len(select.expressions) != items:
            raise CompilerBug(f"{where} is not a select list of {items} items:\n{text}")
        return select

    # -- atoms ------------------------------------------------------------------------------

    def verify_atom(self, text: str, kind: TokenType, value: str) -> None:
        try:
            tokens = self._sg.tokenize(text)
        except TokenError as exc:
            raise CompilerBug(f"atom {text!r} does not tokenize in {self.dialect}") from exc
        if len(tokens) != 1 or tokens[0].token_type != kind or tokens[0].text != value:
            raise CompilerBug(
                f"atom for {value!r} does not read back as one {kind} token "
                f"in {self.dialect}: {text!r}"
            )

    def identifier(self, name: str) -> str:
        if self._quotes is not None and _PLAIN.fullmatch(name):
            return self._quotes[0] + name + self._quotes[1]
        return self._quoted(name)

    def _quoted(self, name: str) -> str:
        text = exp.to_identifier(name, quoted=True).sql(dialect=self.dialect)
        self.verify_atom(text, TokenType.IDENTIFIER, name)
        return text

    def string(self, value: str) -> str:
        text = exp.Literal.string(value).sql(dialect=self.dialect)
        self.verify_atom(text, TokenType.STRING, value)
        return text


def number_text(value: int | Decimal) -> str:
    """Plain decimal notation, never an exponent: the same literal on every engine."""
    if isinstance(value, bool):
        raise CompilerBug("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise CompilerBug(f"non-finite number {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
