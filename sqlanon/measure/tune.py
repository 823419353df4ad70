"""Generalization search: the least-generalized hierarchy levels that make a view k-anonymous
(and optionally l-diverse / t-close) within a suppression limit, found with queries in the
engine (docs/risk.md#tune).

The lattice has one dimension per quasi-identifier generalized through a hierarchy file; its
nodes are level vectors. Whether a node meets k within the suppression limit is monotone
(generalizing only merges classes, so the rows in classes smaller than k never grow): a node
that meets it tags every node above it, a node that fails tags every node below it. Nodes are
evaluated from the middle height of what is still untagged, as ARX's Flash and OLA bisect
their lattices, so most of the lattice is decided without a query. l and t are not monotone
under suppression, so they are checked by query on the k-anonymous nodes, least loss first.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlanon.measure.risk import is_ordered
from sqlanon.plan.model import ColumnStep, KAnonymity, ViewPlan
from sqlanon.policy.hierarchy import Hierarchy, read_csv
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.views import view_query
from sqlanon.warehouse import live_types

MAX_NODES = 20_000  # the bisection rescans the undecided nodes per evaluation
SHOWN = 10  # minimal solutions reported (least loss first)


class TuneError(ValueError):
    """The view cannot be tuned as asked; the message says why."""


@dataclass(frozen=True)
class Dimension:
    column: str
    hierarchy_file: str
    hierarchy: Hierarchy

    @property
    def depth(self) -> int:
        return self.hierarchy.depth


@dataclass(frozen=True)
class Goal:
    k: int
    max_suppression: Decimal  # a share of the rows, 0..1
    l: int | None = None  # noqa: E741 - the model's own name
    sensitive: str | None = None
    t: Decimal | None = None


@dataclass(frozen=True)
class Node:
    levels: tuple[int, ...]
    rows: int
    suppressed: int
    classes: int  # after suppression
    k: int | None  # smallest class after suppression
    discernibility: int  # Σ size² over kept classes + suppressed × rows (Bayardo & Agrawal)
    precision_loss: float  # mean of level/depth over the dimensions (Sweeney's Prec, as a loss)
    l: int | None = None  # noqa: E741
    t: float | None = None
    meets_k: bool = False
    meets_all: bool = False

    @property
    def suppressed_share(self) -> float:
        return self.suppressed / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class TuneResult:
    view: str
    dimensions: tuple[Dimension, ...]
    lattice_size: int
    evaluated: int
    minimal: tuple[Node, ...]  # least-loss k-anonymous nodes with no k-anonymous node below
    minimal_count: int
    best: Node | None


def dimensions(view: ViewPlan) -> tuple[Dimension, ...]:
    """The quasi-identifiers generalized through a hierarchy file; the others stay as the
    policy has them."""
    if view.k_anonymity is None:
        raise TuneError(f"table {view.name} declares no k_anonymity quasi-identifiers")
    base = Path(view.policy_file).parent
    by_name = {c.output: c for c in view.emitted_columns}
    dims = []
    for q in view.k_anonymity.quasi_identifiers:
        step = by_name[q]
        if step.transform != "generalize" or step.param("hierarchy") == "inline":
            continue
        hierarchy, _ = read_csv(base / step.param("hierarchy"))
        dims.append(Dimension(q, step.param("hierarchy"), hierarchy))
    if not dims:
        raise TuneError(
            f"no quasi-identifier of table {view.name} is generalized through a hierarchy file "
            "(write them as {transform: generalize, hierarchy: file.csv, level: 0})"
        )
    return tuple(dims)


def node_view(
    view: ViewPlan, dims: tuple[Dimension, ...], levels: tuple[int, ...], goal: Goal, suppress: bool
) -> ViewPlan:
    """The view reduced to its quasi-identifiers (and the sensitive column), generalized at
    `levels`, with or without k's suppression."""
    assert view.k_anonymity is not None
    at = {d.column: (d, lvl) for d, lvl in zip(dims, levels, strict=True)}
    keep = set(view.k_anonymity.quasi_identifiers) | ({goal.sensitive} if goal.sensitive else set())
    columns: list[ColumnStep] = []
    for c in view.emitted_columns:
        if c.output not in keep:
            continue
        if c.output in at:
            dim, lvl = at[c.output]
            params = tuple((n, lvl if n == "level" else v) for n, v in c.params)
            c = replace(c, params=params, lookup=dim.hierarchy.at_level(lvl))
        columns.append(c)
    kanon = KAnonymity(
        view.k_anonymity.quasi_identifiers, goal.k, "suppress" if suppress else "fail"
    )
    return replace(view, columns=tuple(columns), k_anonymity=kanon, sample=None)


def search(
    view: ViewPlan,
    goal: Goal,
    d: Dialect,
    engine: Any,
    step: Callable[[int], None] | None = None,
) -> TuneResult:
    dims = dimensions(view)
    size = 1
    for dim in dims:
        size *= dim.depth + 1
    if size > MAX_NODES:
        raise TuneError(f"the lattice has {size:,} nodes, more than {MAX_NODES:,}: fix some levels")
    nodes = list(itertools.product(*(range(dim.depth + 1) for dim in dims)))
    qi = [d.ident(q) for q in view.k_anonymity.quasi_identifiers]  # type: ignore[union-attr]
    evaluated: dict[tuple[int, ...], Node] = {}
    meets: dict[tuple[int, ...], bool] = {}
    tick = step or (lambda _: None)

    def loss(levels: tuple[int, ...]) -> float:
        return sum(
            lvl / dim.depth for lvl, dim in zip(levels, dims, strict=True) if dim.depth
        ) / len(dims)

    def evaluate(levels: tuple[int, ...]) -> Node:
        query = view_query(node_view(view, dims, levels, goal, suppress=False), d)
        if goal.sensitive is not None:
            sql = d.statement("tune_classes", query, qi, d.ident(goal.sensitive)).text
            sizes = [(int(n), int(dl), int(c)) for n, dl, c in engine.query(sql)]
        else:
            sql = d.statement("risk_class_sizes", query, qi).text
            sizes = [(int(n), 0, int(c)) for n, c in engine.query(sql)]
        rows = sum(n * c for n, _, c in sizes)
        suppressed = sum(n * c for n, _, c in sizes if n < goal.k)
        kept = [(n, dl, c) for n, dl, c in sizes if n >= goal.k]
        node = Node(
            levels=levels,
            rows=rows,
            suppressed=suppressed,
            classes=sum(c for _, _, c in kept),
            k=kept[0][0] if kept else None,
            discernibility=sum(n * n * c for n, _, c in kept) + suppressed * rows,
            precision_loss=loss(levels),
            l=min((dl for _, dl, _ in kept), default=None) if goal.sensitive else None,
            meets_k=suppressed <= goal.max_suppression * rows,
        )
        evaluated[levels] = node
        tick(len(evaluated))
        return node

    # bisect the lattice on the monotone k predicate
    while len(meets) < len(nodes):
        open_nodes = [n for n in nodes if n not in meets]
        heights = sorted(sum(n) for n in open_nodes)
        middle = heights[len(heights) // 2]
        pick = min(open_nodes, key=lambda n: (abs(sum(n) - middle), n))
        ok = evaluate(pick).meets_k
        for n in open_nodes:
            if ok and all(a >= b for a, b in zip(n, pick, strict=True)):
                meets[n] = True
            elif not ok and all(a <= b for a, b in zip(n, pick, strict=True)):
                meets[n] = False

    candidates = sorted((n for n in nodes if meets[n]), key=lambda n: (loss(n), n))
    minimal = [
        n
        for n in candidates
        if not any(meets.get(_below(n, i), False) for i in range(len(n)) if n[i] > 0)
    ]
    wants_sensitive = goal.sensitive is not None and (goal.l is not None or goal.t is not None)
    best: Node | None = None
    best_key: tuple[Any, ...] | None = None
    checked: set[tuple[int, ...]] = set()  # nodes whose every goal was judged
    for levels in candidates:
        node = evaluated.get(levels) or evaluate(levels)
        if best is not None and node.precision_loss > best.precision_loss:
            break  # candidates are in loss order: nothing later can be better
        checked.add(levels)
        if wants_sensitive:
            node = _with_sensitive(view, dims, node, goal, d, engine, qi)
            evaluated[levels] = node
        else:
            node = replace(node, meets_all=True)
            evaluated[levels] = node
        if node.meets_all:
            key = (node.precision_loss, node.suppressed, node.discernibility, node.levels)
            if best_key is None or key < best_key:
                best, best_key = node, key

    def judged(levels: tuple[int, ...]) -> Node:
        """A minimal node as reported: every goal checked, not only k (a node the search for
        the best did not reach was evaluated for k alone)."""
        node = evaluated.get(levels) or evaluate(levels)
        if levels in checked or not node.meets_k:  # already judged, or fails k anyway
            return node
        if wants_sensitive:
            node = _with_sensitive(view, dims, node, goal, d, engine, qi)
        else:
            node = replace(node, meets_all=True)
        evaluated[levels] = node
        return node

    shown = tuple(judged(n) for n in minimal[:SHOWN])
    return TuneResult(
        view=".".join(view.target),
        dimensions=dims,
        lattice_size=len(nodes),
        evaluated=len(evaluated),
        minimal_count=len(minimal),
        minimal=shown,
        best=best,
    )


def _below(levels: tuple[int, ...], i: int) -> tuple[int, ...]:
    return (*levels[:i], levels[i] - 1, *levels[i + 1 :])


def _with_sensitive(
    view: ViewPlan,
    dims: tuple[Dimension, ...],
    node: Node,
    goal: Goal,
    d: Dialect,
    engine: Any,
    qi: list[Any],
) -> Node:
    """l comes with every evaluation; t needs the distance query over the released rows."""
    assert goal.sensitive is not None
    ok = node.meets_k
    if goal.l is not None:
        ok = ok and node.l is not None and node.l >= goal.l
    t_value = None
    if ok and goal.t is not None:
        released = view_query(node_view(view, dims, node.levels, goal, suppress=True), d)
        step = next(c for c in view.emitted_columns if c.output == goal.sensitive)
        live = live_types(engine, view.source)
        source_type = live.get(step.sources[0].lower()) if step.transform == "keep" else None
        ordered = is_ordered(view, goal.sensitive, {goal.sensitive.lower(): source_type or ""})
        row = engine.query(
            d.statement(
                "risk_sensitive", released, qi, d.ident(goal.sensitive), ordered=ordered
            ).text
        )[0]
        t_value = None if row[2] is None else max(0.0, float(row[2]))
        ok = t_value is not None and t_value <= float(goal.t) + 1e-9
    return replace(node, t=t_value, meets_all=ok)


def with_levels(
    text: str, file: str, table: str, levels: dict[str, int], goal: Goal | None = None
) -> str:
    """The policy text with each named column's `level:` value replaced in place, so comments,
    order and formatting survive (only the digits change) — and the goal's k (and l, t where
    the table declares them) written where they differ, so the patch and the policy agree."""
    from sqlanon.policy.yamltree import YMap, YScalar, load_tree

    root = load_tree(text, file)
    tables = root.get("tables") if isinstance(root, YMap) else None
    spec = tables.get(table) if isinstance(tables, YMap) else None
    columns = spec.get("columns") if isinstance(spec, YMap) else None
    lines = text.split("\n")
    edits = []
    for column, level in levels.items():
        node = columns.get(column) if isinstance(columns, YMap) else None
        value = node.get("level") if isinstance(node, YMap) else None
        if not isinstance(value, YScalar) or value.quoted or not value.text.isdigit():
            raise TuneError(
                f"{file}: column '{column}' of table '{table}' has no literal `level:` to "
                "rewrite (is it defined by an included rule?)"
            )
        edits.append((value.line, value.column, len(value.text), str(level)))
    if goal is not None and isinstance(spec, YMap):
        wanted = (
            ("k_anonymity", "k", goal.k),
            ("l_diversity", "l", goal.l),
            ("t_closeness", "t", goal.t),
        )
        for section, field, goal_value in wanted:
            block = spec.get(section)
            node = block.get(field) if isinstance(block, YMap) else None
            if goal_value is None or not isinstance(node, YScalar) or node.quoted:
                continue
            if node.text != str(goal_value):
                edits.append((node.line, node.column, len(node.text), str(goal_value)))
    for at_line, at_column, width, text in sorted(edits, reverse=True):
        row = lines[at_line - 1]
        lines[at_line - 1] = row[: at_column - 1] + text + row[at_column - 1 + width :]
    return "\n".join(lines)
