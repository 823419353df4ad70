"""The plan as a reviewer reads it: one row per column, what it becomes and why."""

from __future__ import annotations

import json
from typing import Any

from .plan import Plan, ViewPlan, to_jsonable

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
                "type": f"{c.input_type} → {c.output_type}" if c.emitted else c.input_type or "",
            }
        )
    return rows


_NOT_MEASURED = "(declared; the risk report that measures it is not in this version yet)"


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
    if view.grants:
        rules.append(f"grants: {', '.join(view.grants)}")
    return rules


def plan_json(plan: Plan) -> str:
    return json.dumps(to_jsonable(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
