"""The manifest's lineage as OpenLineage (`sqlanon explain --format openlineage`): one static
JobEvent per view and release, whose output dataset carries a ColumnLineageDatasetFacet — each
output column with its source fields and the transformation (masking or not) — so lineage
tools (Marquez, DataHub, OpenMetadata) show where each anonymized column comes from.

The event is a function of the plan: its time is fixed (the epoch of Unix time) and the
policy digest and tool version travel in a job facet, so the export is reproducible."""

from __future__ import annotations

import json
from typing import Any

from sqlanon import __version__
from sqlanon.plan.model import (
    ColumnStep,
    Expression,
    Plan,
    ReleasePlan,
    Source,
    SourceQuery,
    ViewPlan,
    source_reads,
)
from sqlanon.plan.query import query_lineage
from sqlanon.review.explain import format_params
from sqlanon.sql.lookups import lookup_tables
from sqlanon.transforms import known_types

PRODUCER = f"https://pypi.org/project/sqlanon/{__version__}"
SPEC = "https://openlineage.io/spec"
EVENT_SCHEMA = f"{SPEC}/2-0-2/OpenLineage.json#/$defs/JobEvent"
COLUMN_LINEAGE_SCHEMA = (
    f"{SPEC}/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
)
SCHEMA_FACET = f"{SPEC}/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
FIXED_TIME = "1970-01-01T00:00:00Z"


def _facet(schema: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def _transformation(c: ColumnStep) -> dict[str, Any]:
    subtype = "IDENTITY" if c.transform == "keep" else "TRANSFORMATION"
    description = c.transform + (f" {format_params(c.params)}" if c.params else "")
    if c.key:
        description += f" (key {c.key.name} v{c.key.version})"
    return {
        "type": "DIRECT",
        "subtype": subtype,
        "description": description,
        "masking": c.transform != "keep",
    }


def _dataset(namespace: str, name: tuple[str, ...], facets: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": namespace, "name": ".".join(name), "facets": facets}


def _fields(source: Source, column: str) -> list[tuple[tuple[str, ...], str]]:
    """The relation fields a source column comes from: itself, or what a query computes it
    from (sqlanon/plan/query.py)."""
    if not isinstance(source, SourceQuery):
        return [(source, column)]
    lineage = {k.lower(): v for k, v in query_lineage(source.sql, source.dialect).items()}
    return lineage.get(column.lower(), [])


def _event(
    namespace: str,
    job: str,
    policy_digest: str,
    source: Source,
    target: tuple[str, ...],
    steps: list[tuple[str, ColumnStep]],
    dropped: list[str],
    lookups: tuple[tuple[str, ...], ...] = (),
) -> dict[str, Any]:
    fields = {
        out: {
            "inputFields": [
                {
                    "namespace": namespace,
                    "name": ".".join(relation),
                    "field": field,
                    "transformations": [_transformation(step)],
                }
                for src in step.sources
                for relation, field in _fields(source, src)
            ]
        }
        for out, step in steps
    }
    schema = [{"name": out, "type": known_types(step)[1] or ""} for out, step in steps]
    return {
        "eventTime": FIXED_TIME,
        "producer": PRODUCER,
        "schemaURL": EVENT_SCHEMA,
        "job": {
            "namespace": "sqlanon",
            "name": job,
            "facets": {
                "sqlanon": _facet(
                    f"https://pypi.org/project/sqlanon/{__version__}#facet",
                    version=__version__,
                    policySha256=policy_digest,
                    droppedColumns=dropped,
                ),
            },
        },
        # the lookup tables a view joins are inputs too (sqlanon/sql/lookups.py)
        "inputs": [_dataset(namespace, r, {}) for r in (*source_reads(source), *lookups)],
        "outputs": [
            _dataset(
                namespace,
                target,
                {
                    "schema": _facet(SCHEMA_FACET, fields=schema),
                    "columnLineage": _facet(COLUMN_LINEAGE_SCHEMA, fields=fields),
                },
            )
        ],
    }


def events(plan: Plan, namespace: str) -> list[dict[str, Any]]:
    digests = {p.name: p.sha256 for p in plan.policies}
    out = []
    for v in plan.views:
        out.append(_view_event(v, namespace, digests.get(v.policy, "")))
    for r in plan.releases:
        out.append(_release_event(r, namespace, digests.get(r.policy, "")))
    for t in plan.synthetic:
        steps = [(a.name, a.step) for a in t.attributes]
        job = f"{t.policy}.{t.name}"
        out.append(_event(namespace, job, digests.get(t.policy, ""), t.source, t.target, steps, []))
    return out


def _view_event(v: ViewPlan, namespace: str, digest: str) -> dict[str, Any]:
    steps = [(c.output, c) for c in v.emitted_columns]
    dropped = [c.output for c in v.columns if not c.emitted]
    lookups = tuple(table for _, table in lookup_tables(v))
    job = f"{v.policy}.{v.name}"
    return _event(namespace, job, digest, v.source, v.target, steps, dropped, lookups)


def _release_event(r: ReleasePlan, namespace: str, digest: str) -> dict[str, Any]:
    steps = [(g.output, g) for g in r.group_by]
    for m in r.measures:
        if isinstance(m.column, Expression):
            sources = m.column.columns
        else:
            sources = (m.column or r.privacy_unit,)
        step = ColumnStep(
            output=m.name,
            sources=sources,
            transform=f"dp_{m.agg}",
            params=(),
            input_type=m.input_type,
            output_type="float",
            privacy_class="other",
        )
        steps.append((m.name, step))
    return _event(namespace, f"{r.policy}.{r.name}", digest, r.source, r.target, steps, [])


def to_json(plan: Plan, namespace: str) -> str:
    return json.dumps(events(plan, namespace), indent=2, ensure_ascii=False) + "\n"
