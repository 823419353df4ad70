"""Policy → Plan: resolve privacy classes and key versions, and fix each view's digest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from sqlanon.plan.mechanism import (
    CONFIDENCE,
    DiscreteLaplace,
    granularity,
    on_grid,
    power_of_two_at_most,
)
from sqlanon.plan.model import (
    QUASI,
    SENSITIVE,
    Budget,
    ColumnStep,
    InputFile,
    KAnonymity,
    KeyRef,
    LDiversity,
    MeasurePlan,
    NoiseComponent,
    Plan,
    PolicyRef,
    ReleasePlan,
    Retention,
    Sample,
    Selection,
    SyntheticAttribute,
    SyntheticPlan,
    TCloseness,
    UtilityCheck,
    ViewPlan,
    contribution_bounds,
    digest_of,
    rows_only,
    shared_step,
)
from sqlanon.policy.diagnostics import Diagnostic, PolicyError
from sqlanon.policy.model import (
    ColumnSpec,
    PolicySpec,
    ReleaseSpec,
    SyntheticSpec,
    TableSpec,
    UtilityCheckSpec,
)
from sqlanon.transforms import REGISTRY


def _budget(p: PolicySpec) -> Budget:
    assert p.budget is not None  # validated: a policy with releases declares its budget
    return Budget(p.name, Fraction(str(p.budget[0])), Fraction(str(p.budget[1])))


def build_plan(policies: list[PolicySpec]) -> Plan:
    errors: list[Diagnostic] = []
    views = []
    for policy in policies:
        for table in policy.tables:
            views.append(_view(policy, table, errors))
    if errors:
        raise PolicyError(errors)
    return Plan(
        policies=tuple(PolicyRef(p.name, p.file, p.sha256) for p in policies),
        views=tuple(views),
        inputs=merged_inputs(i for p in policies for i in p.inputs),
        releases=tuple(_release(p, r) for p in policies for r in p.releases),
        budgets=tuple(_budget(p) for p in policies if p.budget is not None),
        synthetic=tuple(_synthetic(p, s) for p in policies for s in p.synthetic),
    )


def merged_inputs(inputs: Iterable[InputFile]) -> tuple[InputFile, ...]:
    """The input files, one per role and path (the last read wins), in a stable order."""
    found = {(i.role, i.path): i for i in inputs}
    return tuple(found[k] for k in sorted(found))


def _view(policy: PolicySpec, table: TableSpec, errors: list[Diagnostic]) -> ViewPlan:
    qis = set(table.k_anonymity.quasi_identifiers) if table.k_anonymity else set()
    sensitive = {s.sensitive for s in (table.l_diversity, table.t_closeness) if s}
    columns = []
    for col in table.columns:
        member = QUASI if col.name in qis else SENSITIVE if col.name in sensitive else None
        if col.declared_class and member and col.declared_class != member:
            errors.append(
                Diagnostic(
                    col.loc,
                    f"column '{col.name}' is declared {col.declared_class} but listed as "
                    f"{member.replace('_', '-')}",
                    expected="one privacy class per column",
                )
            )
        privacy_class = col.declared_class or member or REGISTRY[col.transform].privacy_class
        key = KeyRef(col.key, policy.key_versions[col.key]) if col.key else None
        step = ColumnStep(
            output=col.name,
            sources=(col.source,),
            transform=col.transform,
            params=col.params,
            input_type=col.input_type,
            output_type=col.output_type,
            privacy_class=privacy_class,
            key=key,
            lookup=col.lookup,
            description=col.description,
            type_declared=col.type_declared,
        )
        columns.append(shared_step(step))
    sample = None
    if table.sample:
        unit_type = next(
            (
                c.input_type
                for c in table.columns
                if c.source == table.sample.unit and c.transform == "pseudonymize"
            ),
            None,
        )
        unit_type = unit_type or next(
            (c.input_type for c in table.columns if c.source == table.sample.unit), "text"
        )
        key = KeyRef(table.sample.key, policy.key_versions[table.sample.key])
        sample = Sample(table.sample.unit, unit_type, table.sample.fraction, key)
    k = table.k_anonymity
    view = ViewPlan(
        name=table.id,
        policy=policy.name,
        policy_file=policy.file,
        source=table.source,
        target=table.target,
        grants=table.grants,
        columns=tuple(columns),
        key_table=policy.key_table,
        retention=Retention(table.retention.column, table.retention.max_age_days)
        if table.retention
        else None,
        sample=sample,
        k_anonymity=KAnonymity(k.quasi_identifiers, k.k, k.action) if k else None,
        l_diversity=LDiversity(table.l_diversity.sensitive, int(table.l_diversity.level))
        if table.l_diversity
        else None,
        t_closeness=TCloseness(table.t_closeness.sensitive, table.t_closeness.level)
        if table.t_closeness
        else None,
        description=table.description,
        utility=_utility(table.utility),
        unlisted_columns=policy.unlisted_columns,
    )
    return replace(view, digest=digest_of(view))


# -- releases ----------------------------------------------------------------------------------

DEFAULT_LEDGER_TABLE = "sqlanon_ledger"
# `structure: auto` (docs/synthetic.md#auto): ε's share measuring each attribute alone, and
# choosing the tree; the rest measures the chosen pairs, whose counts draw the rows
AUTO_ONE_WAYS = Fraction(1, 10)
AUTO_SELECTION = Fraction(1, 10)


def _component(
    name: str, epsilon: Fraction, sensitivity: Fraction, granularity: Fraction, confidence: Fraction
) -> NoiseComponent:
    noise = DiscreteLaplace(epsilon, sensitivity)
    return NoiseComponent(
        name, epsilon, sensitivity, granularity, noise.ln_p, noise.half_width(confidence)
    )


def _sum_component(
    epsilon: Fraction, rows: int, lo: Fraction, hi: Fraction, groups: int, confidence: Fraction
) -> NoiseComponent:
    """Sums are taken on a power-of-two grid g: each row's clamped input becomes an integer
    number of steps, ⌊x/g + ½⌋ ∈ [qlo, qhi], so every sum after it is an exact integer, equal
    on every engine whatever order it adds in (docs/dp.md#sums). A unit adds at most `rows`
    rows over all groups: sensitivity rows · max(|qlo|, |qhi|) grid steps. The grid is fine
    enough, about rows·max(|lo|, |hi|) / (1024 · max(ε, groups)), that the half step each
    endpoint may round up by adds at most rows / (2048 · max(ε, groups)) to the noise."""
    magnitude = max(abs(lo), abs(hi))
    g = granularity(float(rows * magnitude / max(epsilon, Fraction(groups))))
    # never coarser than the clamp itself: with thousands of rows per unit the formula gave
    # g = 1024 on a [0, 500] clamp, every row rounded to 0 steps and the sensitivity was 0 (a
    # crash, found by tests/test_fuzz.py); a grid ≤ the magnitude keeps at least one step
    g = min(g, power_of_two_at_most(magnitude))
    steps = max(abs(on_grid(lo, g)), abs(on_grid(hi, g)))
    return _component("sum", epsilon, Fraction(rows * steps), g, confidence)


def _grouping_step(c: ColumnSpec) -> ColumnStep:
    """A release's group column or a synthetic table's attribute: a quasi-identifier."""
    step = ColumnStep(
        output=c.name,
        sources=(c.source,),
        transform=c.transform,
        params=c.params,
        input_type=c.input_type,
        output_type=c.output_type,
        privacy_class=QUASI,
        lookup=c.lookup,
    )
    return shared_step(step)


def _release(policy: PolicySpec, r: ReleaseSpec) -> ReleasePlan:
    groups = [_grouping_step(c) for c in r.group_by]
    epsilon, delta = Fraction(str(r.epsilon)), Fraction(str(r.delta))
    g, rows = contribution_bounds(
        r.max_groups_per_unit, r.max_rows_per_unit_per_group, r.max_rows_per_unit
    )
    has_units = any(m.agg == "count_units" for m in r.measures)
    threshold = r.public_groups is None
    # bounded by its rows per unit alone, a release selects its groups by their bounded rows:
    # the same noise as counting units (both sensitivities are that total), without counting
    # each group's distinct units; a count measure's own draw serves (docs/dp.md#groups-
    # public-or-thresholded)
    by_rows = (
        threshold
        and not has_units
        and rows_only(r.max_groups_per_unit, r.max_rows_per_unit_per_group, r.max_rows_per_unit)
    )
    counted = next((m.name for m in r.measures if m.agg == "count"), None) if by_rows else None
    own = threshold and not has_units and counted is None  # the selection draws its own count
    share = epsilon / (len(r.measures) + (1 if own else 0))
    units = _component("units", share, Fraction(g), Fraction(1), CONFIDENCE)
    selection = None
    if by_rows:
        t, chance = DiscreteLaplace(share, Fraction(rows)).rows_threshold(float(delta), rows)
        mine = _component("rows", share, Fraction(rows), Fraction(1), CONFIDENCE) if own else None
        selection = Selection(t, chance, f"{counted}.rows" if counted else "rows", mine)
    elif threshold:
        per_group = float(delta) / g
        t = DiscreteLaplace(share, Fraction(g)).threshold(per_group)
        selection = Selection(t, per_group, "units", units if own else None)
    measures = []
    for m in r.measures:
        clamp = None if m.clamp is None else (Decimal(str(m.clamp[0])), Decimal(str(m.clamp[1])))
        read = (m.agg == "count_units" and threshold) or m.name == counted
        used_delta = delta if read else Fraction(0)
        center = Decimal(0)
        if m.agg == "count_units":
            comps: tuple[NoiseComponent, ...] = (units,)
        elif m.agg == "count":
            comps = (_component("rows", share, Fraction(rows), Fraction(1), CONFIDENCE),)
        else:
            assert clamp is not None
            center = (clamp[0] + clamp[1]) / 2 if m.agg == "avg" else Decimal(0)
            lo, hi = Fraction(clamp[0] - center), Fraction(clamp[1] - center)
            if m.agg == "sum":
                comps = (_sum_component(share, rows, lo, hi, g, CONFIDENCE),)
            else:  # avg = center + noisy centered sum / noisy row count, each at 97.5 %
                half = share / 2
                both = (1 + CONFIDENCE) / 2
                comps = (
                    _sum_component(half, rows, lo, hi, g, both),
                    _component("rows", half, Fraction(rows), Fraction(1), both),
                )
        measures.append(
            MeasurePlan(
                m.name, m.agg, m.column, clamp, m.input_type, share, used_delta, comps, center
            )
        )
    assert policy.key_table is not None  # validated: releases use the noise key
    ledger = policy.ledger or (*policy.key_table[:-1], DEFAULT_LEDGER_TABLE)
    plan = ReleasePlan(
        name=r.id,
        policy=policy.name,
        policy_file=policy.file,
        source=r.source,
        target=r.target,
        grants=r.grants,
        privacy_unit=r.privacy_unit,
        unit_type=r.unit_type,
        group_by=tuple(groups),
        public_groups=r.public_groups,
        max_groups_per_unit=r.max_groups_per_unit,
        max_rows_per_unit_per_group=r.max_rows_per_unit_per_group,
        max_rows_per_unit=r.max_rows_per_unit,
        measures=tuple(measures),
        selection=selection,
        epsilon=epsilon,
        delta=delta if threshold else Fraction(0),
        key=KeyRef(r.key, policy.key_versions[r.key]),
        key_table=policy.key_table,
        ledger=ledger,
        budget=_budget(policy),
        description=r.description,
        utility=_utility(r.utility),
    )
    return replace(plan, digest=digest_of(plan))


def _utility(specs: tuple[UtilityCheckSpec, ...]) -> tuple[UtilityCheck, ...]:
    return tuple(UtilityCheck(u.kind, u.refs, u.limit) for u in specs)


# -- synthetic tables ----------------------------------------------------------------------------


def _synthetic(policy: PolicySpec, s: SyntheticSpec) -> SyntheticPlan:
    """The declared pairs oriented for drawing: each tree of the forest from its attribute
    listed first, outwards (breadth first), so every attribute is drawn after its parent."""
    names = [a.name for a in s.attributes]
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(names))}
    for a, b in s.structure:
        i, j = names.index(a), names.index(b)
        neighbours[i].append(j)
        neighbours[j].append(i)
    edges: list[tuple[int, int]] = []
    seen: set[int] = set()
    for start in range(len(names)):
        if start in seen:
            continue
        seen.add(start)
        queue = [start]
        for i in queue:
            for j in neighbours[i]:
                if j not in seen:
                    seen.add(j)
                    edges.append((i, j))
                    queue.append(j)
    attributes = tuple(
        SyntheticAttribute(_grouping_step(c), domain)
        for c, domain in zip(s.attributes, s.domains, strict=True)
    )
    touched = {a for e in edges for a in e}
    marginals = len(edges) + sum(1 for i in range(len(names)) if i not in touched)
    epsilon = Fraction(str(s.epsilon))
    bound = Fraction(s.max_rows_per_unit)
    one_ways, selection = None, Fraction(0)
    if s.auto_structure:  # docs/synthetic.md#auto: a tenth alone, a tenth choosing, the rest
        n = len(names)
        one_ways = _component(
            "one_ways", epsilon * AUTO_ONE_WAYS / n, bound, Fraction(1), CONFIDENCE
        )
        selection = epsilon * AUTO_SELECTION / (n - 1)
        share = epsilon * (1 - AUTO_ONE_WAYS - AUTO_SELECTION) / (n - 1)
    else:
        share = epsilon / marginals
    cells = _component("cells", share, bound, Fraction(1), CONFIDENCE)
    assert policy.key_table is not None  # validated: synthetic tables use the noise key
    plan = SyntheticPlan(
        name=s.id,
        policy=policy.name,
        policy_file=policy.file,
        source=s.source,
        target=s.target,
        grants=s.grants,
        privacy_unit=s.privacy_unit,
        unit_type=s.unit_type,
        max_rows_per_unit=s.max_rows_per_unit,
        attributes=attributes,
        edges=tuple(edges),
        rows=s.rows,
        epsilon=epsilon,
        cells=cells,
        key=KeyRef(s.key, policy.key_versions[s.key]),
        key_table=policy.key_table,
        ledger=policy.ledger or (*policy.key_table[:-1], DEFAULT_LEDGER_TABLE),
        budget=_budget(policy),
        description=s.description,
        auto=s.auto_structure,
        utility=_utility(s.utility),
        one_ways=one_ways,
        selection_epsilon=selection,
    )
    return replace(plan, digest=digest_of(plan))
