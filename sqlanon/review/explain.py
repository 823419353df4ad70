"""The plan as a reviewer reads it: one row per column, what it becomes and why."""

from __future__ import annotations

import json
from typing import Any

from sqlanon.plan.model import (
    ColumnStep,
    NoiseComponent,
    Plan,
    ReleasePlan,
    SyntheticPlan,
    UtilityCheck,
    ViewPlan,
    to_jsonable,
)
from sqlanon.report import numbers
from sqlanon.transforms import known_types

CLASS_LABELS = {
    "direct_identifier": "direct id",
    "quasi_identifier": "quasi-id",
    "sensitive": "sensitive",
    "other": "other",
}


def _value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, str):
        plain = v and all(ch.isalnum() or ch in "_-./" for ch in v)
        return v if plain else json.dumps(v, ensure_ascii=False)
    return json.dumps(v)


def format_params(params: Any) -> str:
    shown = to_jsonable(params) if params else {}
    return " ".join(f"{k}={_value(v)}" for k, v in shown.items())


def column_rows(view: ViewPlan) -> list[dict[str, str]]:
    rows = []
    for c in view.columns:
        params = format_params(c.params)
        if c.key:
            params = params.replace(
                f"key={_value(c.key.name)}", f"key={_value(c.key.name)}@v{c.key.version}"
            )
        rows.append(
            {
                "column": c.output if c.emitted else f"({c.output})",
                "source": ", ".join(c.sources),
                "transform": c.transform,
                "parameters": params,
                "class": CLASS_LABELS[c.privacy_class],
                "type": _types(c),
            }
        )
    return rows


_NOT_MEASURED = "(declared; `sqlanon risk` measures it in the database)"


def view_rules(view: ViewPlan) -> list[str]:
    rules = []
    if view.retention:
        rules.append(
            f"retention: rows whose {view.retention.column} is within "
            f"{view.retention.max_age_days} days of today"
        )
    if view.sample:
        s = view.sample
        rules.append(
            f"sample: {to_jsonable(s.fraction)} of {s.unit} values, keyed by "
            f"'{s.key.name}' v{s.key.version} (deterministic)"
        )
    if view.k_anonymity:
        k = view.k_anonymity
        verb = "suppress rows of" if k.action == "suppress" else "measure (do not suppress)"
        rules.append(
            f"k-anonymity: k={k.k} over {', '.join(k.quasi_identifiers)}; {verb} smaller classes"
        )
    if view.l_diversity:
        rules.append(
            f"l-diversity: l={view.l_diversity.l} for {view.l_diversity.sensitive} {_NOT_MEASURED}"
        )
    if view.t_closeness:
        rules.append(
            f"t-closeness: t={to_jsonable(view.t_closeness.t)} for "
            f"{view.t_closeness.sensitive} {_NOT_MEASURED}"
        )
    rules += _utility_rules(view.utility)
    if view.grants:
        rules.append(f"grants: {', '.join(view.grants)}")
    return rules


def _utility_rules(checks: tuple[UtilityCheck, ...]) -> list[str]:
    return [f"utility check: {u.describe()} (`sqlanon utility` measures it)" for u in checks]


number = numbers.constant


def _scale(c: NoiseComponent) -> str:
    return number(c.sensitivity * c.granularity / c.epsilon)


def _interval(c: NoiseComponent) -> str:
    return f"±{number(c.half_width * c.granularity)}"


def release_rows(r: ReleasePlan) -> list[dict[str, str]]:
    """Each measure: the ε it spends, its sensitivity, the noise scale and the 95 % interval."""
    rows = []
    for m in r.measures:
        what = m.agg if m.column is None else f"{m.agg}({m.column})"
        if m.clamp is not None:
            what += f" clamped to [{number(m.clamp[0])}, {number(m.clamp[1])}]"
        if m.agg == "avg":
            total, count = m.components
            noise = f"sum {_scale(total)}, rows {_scale(count)}"
            interval = f"sum {_interval(total)} and rows {_interval(count)} at 97.5 % each"
            sensitivity = f"sum {number(total.sensitivity * total.granularity)}, rows " + number(
                count.sensitivity
            )
        else:
            (c,) = m.components
            noise, interval = _scale(c), _interval(c)
            sensitivity = number(c.sensitivity * c.granularity)
        rows.append(
            {
                "measure": m.name,
                "aggregate": what,
                "epsilon": number(m.epsilon),
                "sensitivity": sensitivity,
                "noise scale": noise,
                "95 % interval": interval,
            }
        )
    return rows


def release_rules(r: ReleasePlan) -> list[str]:
    groups, rows = r.sensitivities
    total = "" if r.max_rows_per_unit is None else f", {r.max_rows_per_unit} row(s) in all"
    rules = [
        f"privacy unit {r.privacy_unit}: at most {r.max_groups_per_unit} group(s) per unit, "
        f"{r.max_rows_per_unit_per_group} row(s) per unit and group{total}; the rest are left "
        f"out, chosen by a keyed hash (one unit moves unit counts by ≤ {groups}, row counts "
        f"by ≤ {rows}); what is left out biases counts and sums down — `sqlanon utility` "
        "measures it (docs/dp.md#choosing-bounds)"
    ]
    if r.selection is not None:
        counted = "units" if r.selection.counts_units else "bounded rows"
        if not r.selection.counts_units and r.selection.noise is None:
            counted += f" (measure {r.selection.reads.rsplit('.', 1)[0]}'s draw)"
        rules.append(
            f"groups: released when the noisy count of {counted} exceeds "
            f"{r.selection.threshold} (a group of one unit appears with probability ≤ "
            f"{r.selection.delta_per_group:.3g})"
        )
    else:
        public = r.public_groups or ()
        rules.append(f"groups: {len(public)} public group(s), each released even when empty")
    rules.append(
        f"spends ε={number(r.epsilon)}, δ={number(r.delta)} per refresh, recorded in "
        f"{'.'.join(r.ledger)}"
    )
    rules.append(
        f"noise: discrete Laplace from key '{r.key.name}' v{r.key.version} and the refresh's "
        "nonce (issued by its ledger row): every refresh, of any epoch, draws fresh noise and "
        "spends again; no RANDOM()"
    )
    rules += _utility_rules(r.utility)
    if r.grants:
        rules.append(f"grants: {', '.join(r.grants)}")
    return rules


def synthetic_rows(t: SyntheticPlan) -> list[dict[str, str]]:
    """One row per measured marginal: what it counts, its cells, ε share and noise."""
    rows = []
    for x in t.marginals:
        names = [t.attributes[a].name for a in x]
        cells = 1
        for a in x:
            cells *= len(t.attributes[a].domain)
        noise = t.one_ways if t.one_ways is not None and len(x) == 1 else t.cells
        label = " × ".join(names) + (" (if chosen)" if t.auto and len(x) == 2 else "")
        rows.append(
            {
                "marginal": label,
                "cells": numbers.count(cells),
                "epsilon": number(noise.epsilon),
                "sensitivity": number(noise.sensitivity),
                "noise scale": _scale(noise),
                "95 % interval": _interval(noise),
            }
        )
    return rows


def synthetic_rules(t: SyntheticPlan) -> list[str]:
    names = [a.name for a in t.attributes]
    unit = (
        "every source row is one unit (rows_are_units: declared by the policy, not checked)"
        if t.privacy_unit is None
        else f"privacy unit {t.privacy_unit}: at most {t.max_rows_per_unit} row(s) per unit, "
        "the rest left out, chosen by a keyed hash"
    )
    children = {c for _, c in t.edges}
    roots = [n for i, n in enumerate(names) if i not in children]
    drawn = "; ".join(
        [f"{', '.join(roots)} from its pair's totals (its own counts if in no pair)"]
        + [f"{names[c]} given {names[p]}" for p, c in t.edges]
    )
    if t.auto:
        drawn = (
            f"{names[0]} from the totals of the first pair chosen, then each attribute given "
            "its parent in a tree "
            f"chosen at each refresh: {len(names) - 1} step(s), each adding the pair with one "
            f"end in the tree whose score (the L1 distance of its true counts from the product "
            f"of the noisy one-ways, sensitivity {t.max_rows_per_unit}) plus Gumbel noise is "
            f"largest: an exponential mechanism of ε={number(t.selection_epsilon)} each; "
            "only the chosen pairs' noisy counts are read"
        )
    rows = "the noisy count of the rows used" if t.rows is None else numbers.count(t.rows)
    rules = [
        unit,
        "a row with a value outside its attribute's public domain is not used: "
        + "; ".join(f"{a.name} {len(a.domain)} value(s)" for a in t.attributes),
        f"drawn in this order: {drawn}",
        "consistency: each marginal's noisy counts lowered by one shift, the least whole count "
        "that brings their sum, negatives as 0, back to at most their noisy total (post-"
        "processing: no privacy cost)",
        f"rows: {rows}; values drawn by SHA-256 uniforms of the refresh's nonce (post-processing"
        " of the noisy marginals: no privacy cost)",
        f"spends ε={number(t.epsilon)}, δ=0 per refresh, recorded in {'.'.join(t.ledger)}",
        f"noise: discrete Laplace from key '{t.key.name}' v{t.key.version} and the refresh's "
        "nonce: every refresh draws fresh noise and spends again; no RANDOM()",
        *_utility_rules(t.utility),
    ]
    if t.grants:
        rules.append(f"grants: {', '.join(t.grants)}")
    return rules


def _spenders(policy: str, names: tuple[tuple[Any, ...], ...], plan: Plan) -> str:
    """`2 release(s)`, `1 synthetic table(s)`, or both, of one policy's refreshes."""
    synthetic = {t.name for t in plan.synthetic if t.policy == policy}
    n_syn = sum(1 for r in names if r[0] in synthetic)
    kinds = [(len(names) - n_syn, "release(s)"), (n_syn, "synthetic table(s)")]
    return " and ".join(f"{n} {kind}" for n, kind in kinds if n) or "0 release(s)"


def budget_lines(plan: Plan) -> list[str]:
    from sqlanon.warehouse.budget import planned

    return [
        f"budget of {p.policy}: {_spenders(p.policy, p.releases, plan)} "
        f"spend ε={number(p.epsilon)} of "
        f"{number(p.budget_epsilon)} and δ={number(p.delta)} of {number(p.budget_delta)} "
        "per refresh"
        for p in planned(plan)
    ]


def plan_json(plan: Plan) -> str:
    return json.dumps(to_jsonable(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _types(c: ColumnStep) -> str:
    """`input → output`; `source type` where no `type:` is declared and the warehouse's own
    type of the column decides (transforms.known_types)."""
    given, out = known_types(c)
    shown_in = given or "source type"
    if not c.emitted:
        return shown_in
    return f"{shown_in} → {out or 'source type'}"
