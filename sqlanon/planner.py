"""Policy → Plan: resolve privacy classes and key versions, and fix each view's digest."""

from __future__ import annotations

from dataclasses import replace

from .diagnostics import Diagnostic, PolicyError
from .plan import (
    QUASI,
    SENSITIVE,
    ColumnStep,
    InputFile,
    KAnonymity,
    KeyRef,
    LDiversity,
    Plan,
    PolicyRef,
    Retention,
    Sample,
    TCloseness,
    ViewPlan,
    digest_of,
)
from .policy.model import PolicySpec, TableSpec
from .transforms import REGISTRY


def build_plan(policies: list[PolicySpec]) -> Plan:
    errors: list[Diagnostic] = []
    views = []
    for policy in policies:
        for table in policy.tables:
            views.append(_view(policy, table, errors))
    if errors:
        raise PolicyError(errors)
    inputs: dict[tuple[str, str], InputFile] = {}
    for policy in policies:
        for i in policy.inputs:
            inputs[(i.role, i.path)] = i
    return Plan(
        policies=tuple(PolicyRef(p.name, p.file, p.sha256) for p in policies),
        views=tuple(views),
        inputs=tuple(inputs[k] for k in sorted(inputs)),
        deferred_releases=tuple(f"{p.name}.{r.id}" for p in policies for r in p.releases),
    )


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
        columns.append(
            ColumnStep(
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
            )
        )
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
        unlisted_columns=policy.unlisted_columns,
    )
    return replace(view, digest=digest_of(view))
