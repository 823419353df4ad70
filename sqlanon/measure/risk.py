"""Re-identification and attribute-disclosure risk of each view, measured by queries in the
warehouse (docs/risk.md). Only aggregates come back to Python: the class-size histogram, the
(released, population) class-size pairs, and one row per sensitive column."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlanon.plan.model import QUASI, SENSITIVE, Plan, ViewPlan
from sqlanon.plan.types import NUMERIC_TYPES, ORDERED_FAMILIES, TEMPORAL_TYPES, engine_family
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.views import view_query
from sqlanon.warehouse import live_types
from sqlanon.warehouse.apply import unsuppressed

# Logical types whose values have an order that t-closeness should respect.
ORDERED_TYPES = frozenset(NUMERIC_TYPES + TEMPORAL_TYPES)
DEFAULT_THRESHOLD_K = 5  # records at risk: those in classes smaller than this, absent a declared k


@dataclass(frozen=True)
class AttackerRisk:
    """One attacker model's re-identification probabilities (El Emam's definitions)."""

    highest: float  # the largest probability any single record has
    average: float  # the expected share of records a match-everyone attack re-identifies
    records_at_risk: float  # share of records whose probability exceeds 1/threshold_k


@dataclass(frozen=True)
class SensitiveRisk:
    column: str
    distance: str  # "ordered" or "equal" (t-closeness ground distance)
    distinct_values: int  # in the whole view
    l_distinct: int
    l_entropy: float  # exp of the smallest class entropy
    t: float


@dataclass(frozen=True)
class Requirement:
    name: str  # "k", "l" or "t"
    column: str | None
    required: int | Decimal
    measured: int | float | None
    ok: bool

    @property
    def label(self) -> str:
        return self.name if self.column is None else f"{self.name} for {self.column}"

    @property
    def op(self) -> str:
        """t is an upper bound; k and l are lower bounds."""
        return "≤" if self.name == "t" else "≥"


@dataclass(frozen=True)
class ViewRisk:
    view: str
    rows: int
    quasi_identifiers: tuple[str, ...]
    classes: int
    k: int | None  # the smallest class (None for an empty view)
    class_sizes: tuple[tuple[int, int], ...]  # (size, classes of that size)
    threshold_k: int
    records_below_threshold: int
    sample_uniques: int
    population_rows: int | None
    prosecutor: AttackerRisk | None
    journalist: AttackerRisk | None
    marketer: float | None
    sensitive: tuple[SensitiveRisk, ...]
    requirements: tuple[Requirement, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.requirements)


def quasi_identifiers(view: ViewPlan) -> tuple[str, ...]:
    if view.k_anonymity:
        return view.k_anonymity.quasi_identifiers
    return tuple(c.output for c in view.emitted_columns if c.privacy_class == QUASI)


def sensitive_columns(view: ViewPlan) -> tuple[str, ...]:
    """Declared l-diversity / t-closeness columns, then any other column classed sensitive."""
    names = [m.sensitive for m in (view.l_diversity, view.t_closeness) if m]
    names += [c.output for c in view.emitted_columns if c.privacy_class == SENSITIVE]
    return tuple(dict.fromkeys(names))


def population(view: ViewPlan) -> ViewPlan:
    """Everyone the released rows could belong to: the generalized source before sampling and
    suppression (the journalist's and marketer's population)."""
    return replace(unsuppressed(view), sample=None)


def measure(
    plan: Plan,
    d: Dialect,
    engine: Any,
    with_population: bool = True,
    step: Callable[[str], None] | None = None,
) -> list[ViewRisk]:
    """Measure every view of the plan that has quasi-identifiers. `step` is told each query's
    purpose before it runs (for a progress display)."""
    out = []
    for view in plan.views:
        qi = quasi_identifiers(view)
        if qi:
            out.append(measure_view(view, d, engine, with_population, step or (lambda _: None)))
    return out


def steps(plan: Plan, with_population: bool = True) -> int:
    """How many queries `measure` will run (for a progress bar)."""
    return sum(
        1 + int(with_population) + len(sensitive_columns(v))
        for v in plan.views
        if quasi_identifiers(v)
    )


def measure_view(
    view: ViewPlan, d: Dialect, engine: Any, with_population: bool, step: Callable[[str], None]
) -> ViewRisk:
    target = ".".join(view.target)
    qi = [d.ident(q) for q in quasi_identifiers(view)]
    released = d.statement("select_all", d.relation(view.target))

    step(f"{target}: equivalence classes")
    sizes = tuple(
        (int(n), int(c))
        for n, c in engine.query(d.statement("risk_class_sizes", released, qi).text)
    )
    rows = sum(n * c for n, c in sizes)
    classes = sum(c for _, c in sizes)
    k = sizes[0][0] if sizes else None
    threshold = view.k_anonymity.k if view.k_anonymity else DEFAULT_THRESHOLD_K
    below = sum(n * c for n, c in sizes if n < threshold)
    prosecutor = None
    if rows:
        prosecutor = AttackerRisk(
            highest=1 / sizes[0][0], average=classes / rows, records_at_risk=below / rows
        )

    journalist = marketer = population_rows = None
    if with_population:
        step(f"{target}: population classes")
        source = view_query(population(view), d)
        pairs = [
            (int(f), int(big), int(c))
            for f, big, c in engine.query(
                d.statement("risk_population_sizes", released, source, qi).text
            )
        ]
        population_rows = int(engine.query(d.statement("count_rows", source).text)[0][0] or 0)
        if rows and pairs:
            journalist, marketer = _population_risks(pairs, rows, threshold)

    types = live_types(engine, view.target)
    sensitive = []
    for name in sensitive_columns(view):
        step(f"{target}: {name}")
        ordered = is_ordered(view, name, types)
        if not rows:
            continue
        row = engine.query(
            d.statement("risk_sensitive", released, qi, d.ident(name), ordered=ordered).text
        )[0]
        sensitive.append(
            SensitiveRisk(
                column=name,
                distance="ordered" if ordered else "equal",
                distinct_values=int(row[3]),
                l_distinct=int(row[0]),
                l_entropy=_entropy_l(float(row[1])),
                t=max(0.0, float(row[2])),
            )
        )
    return ViewRisk(
        view=target,
        rows=rows,
        quasi_identifiers=quasi_identifiers(view),
        classes=classes,
        k=k,
        class_sizes=sizes,
        threshold_k=threshold,
        records_below_threshold=below,
        sample_uniques=sum(c for n, c in sizes if n == 1),
        population_rows=population_rows,
        prosecutor=prosecutor,
        journalist=journalist,
        marketer=marketer,
        sensitive=tuple(sensitive),
        requirements=tuple(_requirements(view, k, sensitive)),
    )


def _entropy_l(entropy: float) -> float:
    """exp of the smallest class entropy; a class of one value has entropy 0, which the float
    sum gives as a few ulps either side, so the result is rounded to 9 decimals."""
    return round(math.exp(max(entropy, 0.0)), 9)


def _population_risks(
    pairs: list[tuple[int, int, int]], rows: int, threshold: int
) -> tuple[AttackerRisk, float]:
    """Journalist: the attacker matches one target against the population, so a released
    record's probability is 1/F (F its class's population size). Marketer: the expected share
    of released records re-identified when every one is matched, Σ f/F over n — which is also
    the journalist's average."""
    smallest = min(big for _, big, _ in pairs)
    expected = sum(c * f / big for f, big, c in pairs)
    at_risk = sum(c * f for f, big, c in pairs if big < threshold)
    average = expected / rows
    return AttackerRisk(1 / smallest, average, at_risk / rows), average


def is_ordered(view: ViewPlan, name: str, engine_types: dict[str, str]) -> bool:
    """Numbers and dates use the ordered distance; text and booleans the equal distance. The
    live column's type decides (an undeclared `keep` is planned as text); the plan's output
    type where the engine cannot say."""
    live = engine_types.get(name.lower())
    if live:
        return engine_family(live) in ORDERED_FAMILIES
    step = next(c for c in view.emitted_columns if c.output == name)
    return step.output_type in ORDERED_TYPES


def _requirements(
    view: ViewPlan, k: int | None, sensitive: list[SensitiveRisk]
) -> Iterator[Requirement]:
    by_column = {s.column: s for s in sensitive}
    if view.k_anonymity:
        need = view.k_anonymity.k
        yield Requirement("k", None, need, k, k is None or k >= need)
    if view.l_diversity:
        s = by_column.get(view.l_diversity.sensitive)
        got = s.l_distinct if s else None
        yield Requirement(
            "l",
            view.l_diversity.sensitive,
            view.l_diversity.l,
            got,
            got is None or got >= view.l_diversity.l,
        )
    if view.t_closeness:
        s = by_column.get(view.t_closeness.sensitive)
        got_t = s.t if s else None
        # distances are sums of float shares: allow their rounding error, not more
        yield Requirement(
            "t",
            view.t_closeness.sensitive,
            view.t_closeness.t,
            got_t,
            got_t is None or got_t <= float(view.t_closeness.t) + 1e-9,
        )
