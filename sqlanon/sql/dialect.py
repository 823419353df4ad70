"""A target dialect: its templates from dialects/<name>/ on top of dialects/base/.

A dialect folder states only how it differs from standard SQL (the sqlglot habit): a macro in
its primitives.sql.j2 or statements.sql.j2 replaces the base macro of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from sqlanon import resources
from sqlanon.sql import codecache
from sqlanon.sql.shapes import CompilerBug, ShapeCache, Sql, number_text

TEMPLATE_FILES = ("primitives.sql.j2", "statements.sql.j2", "risk.sql.j2", "utility.sql.j2")
_REGULAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DialectError(ValueError):
    """The policy asks for something this dialect cannot express (a usage error)."""


def available() -> tuple[str, ...]:
    root = resources.dialects_dir()
    return tuple(sorted(p.parent.name for p in root.glob("*/dialect.yml")))


@cache
def aliases() -> dict[str, str]:
    """Every name a user may type for a dialect (its own and its dialect.yml `aliases`) →
    the dialect's name, lower case."""
    out: dict[str, str] = {}
    for name in available():
        config = yaml.safe_load(
            (resources.dialects_dir() / name / "dialect.yml").read_text(encoding="utf-8")
        )
        for alias in (name, *config.get("aliases", ())):
            out[str(alias).lower()] = name
    return out


MESSAGE_PIECE = 60  # characters per literal of a long error message (Dialect.message)


@dataclass(frozen=True)
class Features:
    """What a dialect's engine has or lacks: the `features:` of its dialect.yml, every key
    declared here with its default — an unknown key (a typo) is refused when the dialect
    loads, rather than read as its default at one of the places that consult it."""

    grants: bool = True  # GRANT exists (else roles go to the manifest and a header note)
    grants_note: str | None = None  # what to do instead, in each file's header
    transactions: bool = True  # multi-statement transactions (BEGIN … COMMIT)
    transactional_ddl: bool = False  # CREATE/DROP inside a transaction roll back with it
    lock_table: bool = False  # refreshes sharing a ledger serialize on a lock
    view_fence: bool = False  # views fence filtered rows from the planner (MATERIALIZED)
    # a filled lookup table is analyzed (statements: analyze_table): without statistics the
    # planner hashes the source instead of the lookup, 3.6× slower (benchmarks/hierarchy.py)
    analyze_lookups: bool = False
    # a refresh sets the planner for its transaction (statements: no_jit, free_gather). JIT
    # off: PostgreSQL compiled a release's large expressions for most of a 127 s refresh of
    # 3 M rows (18 s without). Rows from parallel workers costed at nothing: the count of each
    # unit's rows ran serially, 3.4 s of a 5.7 s refresh, 2.3 s in parallel (docs/benchmarks.md
    # dp_release)
    refresh_planner_settings: bool = False
    # a refresh computes the epoch's rows with CREATE TEMP TABLE … AS, then inserts them
    # (statements: epoch_rows, insert_epoch_rows): PostgreSQL runs an INSERT … SELECT without
    # parallel workers, a CREATE TABLE AS with them (docs/benchmarks.md dp_release)
    refresh_through_temp_table: bool = False
    # a synthetic table's draws are MATERIALIZED steps: inlined, the planner joined all nine
    # cumulative-weight scans before filtering any (sqlanon/sql/synthetic.py)
    materialized_steps: bool = False
    # a release's rows (read by three or four of its steps) are a NOT MATERIALIZED CTE:
    # recomputed by each reader rather than stored, as DuckDB and PostgreSQL store a CTE read
    # more than once (TPC-H SF1: PostgreSQL 12.6 s stored, 8.7 s inlined; docs/benchmarks.md
    # dp_release)
    inline_release_rows: bool = False
    # where it counts units per group, a release finds its heavy units with a window over the
    # (unit, group) pairs (each pair reads its unit's rows) rather than a GROUP BY over the
    # rows: PostgreSQL then sorts the pairs once, in parallel, and reads the units' totals
    # off that order (TPC-H SF1 refresh: 10.0-10.4 → 7.6-8.7 s), where DuckDB's window is
    # slower than its hash aggregate (0.69 → 1.1 s).
    # The pairs are then counted per group and heavy unit (a few rows) rather than stored for
    # two readers (per-group step 9.75 → 8.38 s); docs/benchmarks.md dp_release
    heavy_by_window: bool = False
    # without pairs (nothing reads the units per group), the heavy units are a CTE computed
    # once: PostgreSQL otherwise plans their aggregate as the build side of a parallel hash
    # join and every worker computes all of it (TPC-H SF1 per-group step 9.5 → 5.7 s)
    materialize_heavy: bool = False
    # Spark inlines a deterministic CTE at every reference, so a plan holds one copy of it per
    # reference (the synthetic table's choice and draws ran the driver out of heap planning);
    # a CTE with a nondeterministic filter (RAND() >= 0, always true) is computed once and
    # shared. The synthetic refresh wraps its shared steps so (sqlanon/sql/synthetic.py)
    shared_steps_by_rand: bool = False
    # a query nested deeper than the analyzer's default fixed-point budget (Spark: 100
    # iterations) needs a larger one, set first (statements: analyzer_iterations): a synthetic
    # table with `structure: auto` nests one level per step of its tree and of its draws
    analyzer_iterations: int = 0
    fold_case: str | None = None  # "upper": unquoted names are stored upper-cased
    relation_path: str | None = None  # "one_identifier": `project.dataset.table` quoted whole
    identifier_forbids: tuple[str, ...] = ()  # characters a name may not hold
    identifier_forbids_leading: tuple[str, ...] = ()  # ... nor start with
    unsupported_canonical: tuple[str, ...] = ()  # types whose canonical text cannot match
    dbt_view_config: tuple[tuple[str, Any], ...] = ()  # extra dbt config of view models
    dbt_release_config: tuple[tuple[str, Any], ...] | None = None  # dbt config of releases

    @classmethod
    def read(cls, raw: dict[str, Any] | None, where: str) -> Features:
        raw = raw or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            known_list = ", ".join(sorted(known))
            raise DialectError(
                f"{where}: unknown feature(s) {', '.join(unknown)}; known: {known_list}"
            )
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, dict):
                value = tuple(value.items())  # in the order written
            values[key] = value
        return cls(**values)


class Dialect:
    def __init__(self, folder: Path):
        self.folder = folder
        config = yaml.safe_load((folder / "dialect.yml").read_text(encoding="utf-8"))
        self.name: str = config["name"]
        self.title: str = config["title"]
        self.sqlglot: str = config["sqlglot"]
        self.types: dict[str, str] = config["types"]
        self.features = Features.read(config.get("features"), str(folder / "dialect.yml"))
        # the engine runner the tests and `sqlanon conformance` start (sqlanon.testing.RUNNERS)
        self.engine: str = config.get("engine", self.name)
        self._fold = self.features.fold_case
        self.macros = self._load_macros(folder)
        self._shapes = ShapeCache(self.sqlglot, self.macros)
        self._idents: dict[str, Sql] = {}
        self._qualified: dict[tuple[str, ...], Sql] = {}
        self._strings: dict[str, Sql] = {}
        self._numbers: dict[int | Decimal, Sql] = {}

    def _load_macros(self, folder: Path) -> dict[str, Callable[..., str]]:
        base = folder.parent / "base"
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(folder), str(base)]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["types"] = self.types
        env.globals["undefined_primitive"] = self._undefined_primitive
        env.globals["features"] = self.features
        # a fixed identifier written in a template ({{ "name" | ident }}), quoted the dialect's way
        env.filters["ident"] = lambda name: self.ident(name).text
        macros: dict[str, Callable[..., str]] = {}
        for layer in (base, folder):
            for fname in TEMPLATE_FILES:
                path = layer / fname
                if not path.exists():
                    continue
                source = path.read_text(encoding="utf-8")
                template = env.template_class.from_code(
                    env, codecache.compiled(env, source), env.make_globals(None), None
                )
                module = template.module
                for attr in dir(module):
                    value = getattr(module, attr)
                    if isinstance(value, jinja2.runtime.Macro):
                        macros[attr] = value
        return macros

    def _undefined_primitive(self, name: str) -> str:
        raise DialectError(
            f"dialect {self.name} does not define the primitive '{name}' "
            f"(its contract: dialects/base/primitives.sql.j2; define it in "
            f"dialects/{self.name}/primitives.sql.j2)"
        )

    # -- atoms ------------------------------------------------------------------------------

    def ident(self, name: str) -> Sql:
        """A quoted identifier. A policy name that is a regular identifier means what the
        warehouse means by that name unquoted: dialects that fold unquoted names (Snowflake
        to upper case, PostgreSQL to lower case) get the folded name, quoted."""
        hit = self._idents.get(name)
        if hit is None:
            forbidden = [c for c in self.features.identifier_forbids if c in name]
            if forbidden:
                raise DialectError(
                    f"{self.title} names cannot contain {' or '.join(map(repr, forbidden))}: "
                    f"{name!r}"
                )
            if name.startswith(tuple(self.features.identifier_forbids_leading)):
                raise DialectError(f"{self.title} names cannot start with {name[0]!r}: {name!r}")
            hit = self._idents[name] = Sql(self._shapes.identifier(self.stored_name(name)))
        return hit

    def stored_name(self, name: str) -> str:
        """The name the warehouse stores for a policy name (see `ident`), unquoted."""
        if self._fold and _REGULAR.fullmatch(name):
            return name.upper() if self._fold == "upper" else name.lower()
        return name

    def qualified(self, parts: tuple[str, ...]) -> Sql:
        """A dotted name of separately quoted parts: alias.column. Kept by its parts: a view
        names each of its source columns so (a tenth of lowering, quoted afresh each time)."""
        hit = self._qualified.get(parts)
        if hit is None:
            hit = Sql(".".join([self.ident(p).text for p in parts]))
            self._qualified[parts] = hit
        return hit

    def relation(self, parts: tuple[str, ...]) -> Sql:
        """A table, view or schema name. Dialects whose paths are one quoted identifier
        (BigQuery's `project.dataset.table`) quote the joined path once."""
        if self.features.relation_path == "one_identifier":
            if any("." in p for p in parts):
                raise DialectError(
                    f"{self.title} table and dataset names cannot contain dots: "
                    f"{'.'.join(repr(p) for p in parts)}"
                )
            return self.ident(".".join(parts))
        return self.qualified(parts)

    def string(self, value: str) -> Sql:
        hit = self._strings.get(value)
        if hit is None:
            hit = self._strings[value] = Sql(self._shapes.string(value))
        return hit

    def message(self, text: str) -> Sql:
        """An error message as text: string literals of at most MESSAGE_PIECE characters,
        split at spaces and concatenated, so the line-length pass can break a long message
        over lines (sqlanon/sql/layout.py) while the text the user sees is unchanged."""
        pieces: list[str] = []
        for word in text.split(" "):
            if pieces and len(pieces[-1]) + 1 + len(word) <= MESSAGE_PIECE:
                pieces[-1] += " " + word
            else:
                pieces.append(word)
        pieces = [p + " " for p in pieces[:-1]] + pieces[-1:]
        if len(pieces) == 1:
            return self.string(text)
        return Sql(self.prim("concat", [self.string(p) for p in pieces]).text, atomic=False)

    def noted(self, sql: Sql, note: str) -> Sql:
        """`sql` followed by a block comment saying what it is (a constant's meaning, for the
        reviewer). The note is our own text, checked to stay inside its comment."""
        if "*/" in note or not all(" " <= ch <= "~" for ch in note):
            raise CompilerBug(f"note {note!r} cannot be a SQL comment")
        return Sql(f"{sql.text} /* {note} */", sql.atomic)

    def number(self, value: int | Decimal) -> Sql:
        # kept by value: equal numbers have one text; booleans and non-finite decimals go
        # to number_text, which refuses them
        plain = type(value) is int or (type(value) is Decimal and value.is_finite())
        hit = self._numbers.get(value) if plain else None
        if hit is None:
            text = number_text(value)  # 1, 1.0 and 1E0 are all "1"
            hit = Sql(text, atomic=not text.startswith("-"))
            if plain:
                self._numbers[value] = hit
        return hit

    # -- templates --------------------------------------------------------------------------

    def prim(self, name: str, *args: Any, **structure: Any) -> Sql:
        """An expression from the primitive template `name`."""
        return self._shapes.call(name, args, structure, "expression")

    def statement(self, name: str, *args: Any, **structure: Any) -> Sql:
        """A whole statement (or query) from the statement template `name`, no semicolon."""
        return self._shapes.call(name, args, structure, "statement")

    def items(self, name: str, *args: Any, **structure: Any) -> Sql:
        """A select list from the list template `name`, one item per element of its first
        argument; it fills a hole that is an item of a select list (a view's columns)."""
        return self._shapes.call(name, args, structure, "list")

    def type_name(self, logical: str) -> str:
        try:
            return self.types[logical]
        except KeyError:
            raise CompilerBug(f"dialect {self.name} has no type for '{logical}'") from None


@cache
def get(name: str) -> Dialect:
    folder = resources.dialects_dir() / name
    if not (folder / "dialect.yml").exists():
        raise KeyError(name)
    return Dialect(folder)
