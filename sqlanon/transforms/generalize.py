from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlanon.plan.model import QUASI, ColumnStep, InputFile
from sqlanon.policy.diagnostics import display_path
from sqlanon.policy.hierarchy import Hierarchy, HierarchyError, parse_rows, read_csv
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import (
    ColumnContext,
    Domain,
    HierarchySource,
    Int,
    LowerContext,
    Pairs,
    Param,
    Text,
    Transform,
    register,
)
from sqlanon.transforms.common import canonical

# How a view lowers a hierarchy (benchmarks/hierarchy.py, docs/benchmarks.md): up to CASE_MAX
# source values a CASE of IN-lists (on DuckDB faster than a join there, 6× slower at 100; read
# inline by the reviewer); up to INLINE_MAX a join to the pairs written into the view's SQL as
# a relation; beyond, a join to a lookup table the view's file fills — DuckDB binds a VALUES
# list on every query of the view, 25 ms at 1,000 rows and 3 s at 100,000.
CASE_MAX = 16
INLINE_MAX = 250


@register
class Generalize(Transform):
    name = "generalize"
    disclosure = 3
    groupable = True
    larger_discloses_more = (("level", -1),)
    summary = (
        "Replace a value by its ancestor at `level` in a generalization hierarchy: an "
        "ARX-style CSV (`value;level1;level2;…`, path relative to the policy file) or "
        "an inline mapping `{value: [level 1, level 2, …]}`. Level 0 keeps the value. "
        "Values missing from the hierarchy become `unknown` (default `*`, ARX's "
        "top-level symbol), so an unexpected value can never pass through."
    )
    nulls = "NULL stays NULL."
    types_doc = (
        "Matches on the canonical text of the value (declare `type: integer` for a "
        "numeric column such as age); the output is text."
    )
    example = "occupation: {transform: generalize, hierarchy: hierarchies/occupation.csv, level: 1}"
    privacy_class = QUASI
    reads_canonical_text = True
    params = (
        Param("hierarchy", HierarchySource(), "the hierarchy", required=True),
        Param("level", Int(0, 100), "the level to generalize to", required=True),
        Param("unknown", Text(), "output for values not in the hierarchy", default="*"),
    )

    def _load(self, p: dict[str, Any], ctx: ColumnContext) -> Hierarchy | None:
        kind, source = p["hierarchy"]
        try:
            if kind == "inline":
                return parse_rows(list(source), "the inline hierarchy")
            path = Path(ctx.base_dirs.get("hierarchy", Path("."))) / source
            hierarchy, sha = read_csv(path)
        except FileNotFoundError:
            ctx.error(
                "hierarchy",
                f"hierarchy file '{source}' not found",
                expected="a path relative to the policy file",
                hint=f"looked at {path}",
            )
            return None
        except (HierarchyError, UnicodeDecodeError, OSError) as exc:
            ctx.error(
                "hierarchy",
                f"hierarchy '{source}' cannot be used: {exc}",
                expected="an ARX-style CSV: value;level1;level2;… with equal-length rows",
            )
            return None
        ctx.inputs.append(InputFile(display_path(path), sha, "hierarchy"))
        return hierarchy

    def normalize(self, p: dict[str, Any], ctx: ColumnContext) -> dict[str, Any] | None:
        hierarchy = self._load(p, ctx)
        if hierarchy is None:
            return None
        if p["level"] > hierarchy.depth:
            ctx.error(
                "level",
                f"level {p['level']} is beyond the hierarchy's deepest level ({hierarchy.depth})",
                expected=f"a level from 0 to {hierarchy.depth}",
            )
            return None
        kind, source = p["hierarchy"]
        shown = source if kind == "file" else "inline"
        return {**p, "hierarchy": shown, "_rows": hierarchy}

    def lookup(self, p: dict[str, Any], ctx: ColumnContext) -> tuple[tuple[str, str], ...] | None:
        rows: Hierarchy = p["_rows"]
        return rows.at_level(p["level"])

    def output_type(self, input_type: str, p: dict) -> str | None:
        return "text"

    def domain(self, p: dict[str, Any], output_type: str, lookup: Pairs = None) -> Domain:
        """The hierarchy fixes it: the values at `level` in the hierarchy's order, and
        `unknown` (what a value missing from the hierarchy becomes); level 0, the hierarchy's
        own values (a value missing from it is outside the domain)."""
        if lookup is None:
            return None
        values = dict.fromkeys(target for _, target in lookup)
        if p["level"] != 0:
            values[p["unknown"]] = None
        return tuple(values)

    def lookup_table(self, step: ColumnStep) -> bool:
        return step.param("level") != 0 and len(step.lookup or ()) > INLINE_MAX

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        d = ctx.dialect
        s = canonical(ctx, x, step.input_type)
        if step.param("level") == 0:
            return s
        unknown = d.string(step.param("unknown"))
        if ctx.lookups is not None and len(step.lookup or ()) > CASE_MAX:
            # a join to the hierarchy as a relation (benchmarks/hierarchy.py)
            joined = ctx.lookups.join(step, lambda column: canonical(ctx, column, step.input_type))
            found = d.prim("coalesce", [joined, unknown])
            return d.prim("case", [d.prim("is_null", x), d.prim("null"), found])
        s = ctx.let(s, f"{step.sources[0]}_text")
        groups: dict[str, list[str]] = {}
        for value, target in step.lookup or ():
            groups.setdefault(target, []).append(value)
        parts = [d.prim("is_null", x), d.prim("null")]
        for target, values in groups.items():
            parts += [d.prim("in_list", s, [d.string(v) for v in values]), d.string(target)]
        parts.append(unknown)
        return d.prim("case", parts)
