"""Lookup relations: a hierarchy's value → replacement pairs as data the engine joins.

A CASE with one literal per source value is planned and evaluated branch by branch: at 100,000
values a view ran 574× slower than a join (issue 17). A view therefore LEFT JOINs the pairs on
the canonical text of the source value, either written into its SQL as a relation (up to
generalize.INLINE_MAX pairs: no object to deploy, read by the reviewer in the file) or, beyond
that, as a lookup table its file creates and fills before the view (`lookup_table_statements`)
beside the view, named after the view and column (`lookup_table_name`). The hierarchy's values
are unique (policy/hierarchy.py), so the join never repeats a row; a value with no pair gets
NULL from the join and the transform's `unknown` from the view.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlanon.plan.model import ColumnStep, ViewPlan
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.shapes import Sql
from sqlanon.sql.shared import Names
from sqlanon.transforms import REGISTRY

ROWS_PER_INSERT = 1000  # Snowflake takes at most 16,384 rows in a VALUES list
VALUE, TARGET = "value", "target"


def lookup_table_name(view: tuple[str, ...], column: str) -> tuple[str, ...]:
    """Beside the view, named after it and the column, in letters, digits and underscores
    (every engine's plain identifier) and at most 63 bytes (PostgreSQL's limit); the digest
    keeps two columns apart that read alike once spelled so."""
    plain = re.sub(r"[^A-Za-z0-9]+", "_", f"{view[-1]}_{column}").strip("_").lower()
    tag = hashlib.sha256(f"{view[-1]}\0{column}".encode()).hexdigest()[:8]
    return (*view[:-1], f"_sqlanon_lookup_{plain[:30]}_{tag}")


def lookup_tables(view: ViewPlan) -> list[tuple[ColumnStep, tuple[str, ...]]]:
    """The view's columns whose lookups are deployed as tables, with each table's name (only
    a column with lookup pairs can have one: the others are not asked, a twentieth of
    lowering a large policy's views)."""
    return [
        (col, lookup_table_name(view.target, col.output))
        for col in view.emitted_columns
        if col.lookup and REGISTRY[col.transform].lookup_table(col)
    ]


def lookup_table_statements(table: tuple[str, ...], step: ColumnStep, d: Dialect) -> list[str]:
    """Create the table if missing, empty it, insert the pairs: inside a deploy's transaction
    (where the engine has one) readers of the view see the old pairs or the new ones."""
    relation = d.relation(table)
    out = [
        d.statement("create_lookup_table", relation).text,
        d.statement("clear_table", relation).text,
    ]
    pairs = list(step.lookup or ())
    for start in range(0, len(pairs), ROWS_PER_INSERT):
        chunk = pairs[start : start + ROWS_PER_INSERT]
        values = [d.string(v) for v, _ in chunk]
        targets = [d.string(t) for _, t in chunk]
        out.append(d.statement("insert_lookup_rows", relation, values, targets).text)
    if d.features.analyze_lookups:
        out.append(d.statement("analyze_table", relation).text)
    return out


@dataclass(frozen=True)
class Join:
    relation: Sql  # the table, or the name of the CTE holding the pairs
    alias: Sql
    on: Sql
    target: Sql  # alias.target
    name: Sql  # the input column the view's expressions read
    inline: Sql | None  # the CTE's query, for pairs written into the view
    step: ColumnStep


@dataclass
class ViewLookups:
    """Collects the joins of one view's query (LookupJoins, transforms/base.py)."""

    d: Dialect
    view: ViewPlan
    names: Names
    source_alias: str
    tables: bool  # join deployed lookup tables (compiled views) or inline every pair
    joins: list[Join] = field(default_factory=list)

    def join(self, step: ColumnStep, key: Callable[[Sql], Sql]) -> Sql:
        d = self.d
        i = len(self.joins) + 1
        alias = d.ident(f"_sqlanon_lookup{i}")
        name = d.ident(self.names.take(f"{step.output}_lookup"))
        pairs = step.lookup or ()
        inline: Sql | None = None
        if self.tables and REGISTRY[step.transform].lookup_table(step):
            relation = d.relation(lookup_table_name(self.view.target, step.output))
        else:
            relation = d.ident(f"_sqlanon_pairs{i}")
            values = [d.string(v) for v, _ in pairs]
            targets = [d.string(t) for _, t in pairs]
            # a whole query, placed in its own CTE by the template (as the key row is)
            inline = Sql(d.statement("lookup_pairs", values, targets).text)
        source = key(d.qualified((self.source_alias, step.sources[0])))
        on = d.prim("eq", d.qualified((f"_sqlanon_lookup{i}", VALUE)), source)
        target = d.qualified((f"_sqlanon_lookup{i}", TARGET))
        self.joins.append(Join(relation, alias, on, target, name, inline, step))
        return name
