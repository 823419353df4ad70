"""Schema drift: the live source catalog against what the policy expects of it (docs/drift.md).
For a scheduled job: a new source column is reported (it stays out of every view, as
`unlisted_columns: drop` promises) unless the policy says `error`; a column the policy reads
that is gone, or whose type no longer fits its transform or declared type, is an error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlanon.plan.model import (
    ColumnStep,
    Expression,
    Plan,
    ReleasePlan,
    Source,
    source_label,
)
from sqlanon.plan.types import LOGICAL_FAMILY, engine_family
from sqlanon.policy.diagnostics import Diagnostic
from sqlanon.policy.model import PolicySpec
from sqlanon.transforms import REGISTRY
from sqlanon.warehouse.sources import (
    LiveSource,
    SourceProblem,
    expression_rounding,
    live_source,
)

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    kind: str  # missing_source | missing_column | type_changed | new_column
    object: str  # "table customers" or "release orders_by_status"
    relation: str
    column: str | None
    detail: str

    @property
    def where(self) -> str:
        """`table p: raw.p.email`: the policy object and what it reads, as messages name it."""
        return f"{self.object}: {self.relation}" + (f".{self.column}" if self.column else "")


def check(plan: Plan, engine: Any) -> list[Finding]:
    findings: list[Finding] = []
    for v in plan.views:
        reads: list[tuple[str, ColumnStep | str | None]] = [(c.sources[0], c) for c in v.columns]
        if v.retention:
            reads.append((v.retention.column, None))
        if v.sample:
            reads.append((v.sample.unit, None))
        seen = _read(engine, v.source)
        findings += _relation(f"table {v.name}", v.source, seen, reads, v.unlisted_columns)
    for r in plan.releases:
        release_reads: list[tuple[str, ColumnStep | str | None]] = [(r.privacy_unit, None)]
        release_reads += [(g.sources[0], g) for g in r.group_by]
        for m in r.measures:
            if isinstance(m.column, Expression):  # its columns must be there: + - * says the rest
                release_reads += [(c, None) for c in m.column.columns]
            elif m.column:
                release_reads.append((m.column, "number" if m.input_type != "text" else None))
        seen = _read(engine, r.source)
        findings += _relation(f"release {r.name}", r.source, seen, release_reads, None)
        if isinstance(seen, LiveSource):  # (a missing source is reported by _relation)
            findings += _measure_rounding(engine, r, seen)
    for t in plan.synthetic:
        synthetic_reads: list[tuple[str, ColumnStep | str | None]] = [
            (a.step.sources[0], a.step) for a in t.attributes
        ]
        if t.privacy_unit is not None:
            synthetic_reads.append((t.privacy_unit, None))
        seen = _read(engine, t.source)
        findings += _relation(f"synthetic {t.name}", t.source, seen, synthetic_reads, None)
    unique = set(findings)  # a column read twice (a sum and an average of it) is said once
    return sorted(unique, key=lambda f: (f.severity != ERROR, f.object, f.column or "", f.kind))


def _read(engine: Any, source: Source) -> LiveSource | SourceProblem:
    """The source as the catalog has it, read once for every check of it."""
    try:
        return live_source(engine, source)
    except SourceProblem as gone:  # a query source: what it names is not all there
        return gone


def _measure_rounding(engine: Any, r: ReleasePlan, seen: LiveSource) -> Iterator[Finding]:
    """A measure expression's decimal arithmetic that some engine would round."""
    for m in r.measures:
        if not isinstance(m.column, Expression):
            continue
        for detail in expression_rounding(engine, seen.columns, m.column):
            yield Finding(
                WARNING,
                "decimal_rounding",
                f"release {r.name}",
                source_label(r.source),
                None,
                f"measure {m.name}: {detail}: values may differ between engines (docs/sources.md)",
            )


def _relation(
    obj: str,
    source: Source,
    seen: LiveSource | SourceProblem,
    reads: list[tuple[str, ColumnStep | str | None]],
    unlisted: str | None,
) -> Iterator[Finding]:
    """`reads`: (column, what it must fit — a column step, "number" for a measured column, or
    nothing when only its presence matters)."""
    name = source_label(source)
    if isinstance(seen, SourceProblem):
        kind = "missing_source" if seen.column is None else "missing_column"
        yield Finding(ERROR, kind, obj, seen.relation, seen.column, seen.detail)
        return
    live = {n.lower(): (n, t) for n, t in seen.columns}
    if not live:
        yield Finding(ERROR, "missing_source", obj, name, None, "the source relation is not there")
        return
    expected = {col.lower() for col, _ in reads}
    for col, fits in reads:
        key = col.lower()
        if key not in live and isinstance(fits, ColumnStep) and fits.transform == "drop":
            yield Finding(
                WARNING,
                "missing_column",
                obj,
                name,
                col,
                "the policy drops it anyway; it can leave the policy",
            )
        elif key not in live:
            yield Finding(
                ERROR,
                "missing_column",
                obj,
                name,
                col,
                "the policy reads it; the view or refresh would fail",
            )
        elif fits is not None and live[key][1]:  # a query column sqlglot could not type: ""
            problem = _type_problem(fits, live[key][1])
            if problem:
                yield Finding(ERROR, "type_changed", obj, name, col, problem)
            elif isinstance(fits, ColumnStep) and (hint := _undeclared(fits, live[key][1])):
                yield Finding(WARNING, "undeclared_type", obj, name, col, hint)
    for detail in seen.rounding:
        yield Finding(
            WARNING,
            "decimal_rounding",
            obj,
            name,
            None,
            detail + ": values may differ between engines (docs/sources.md)",
        )
    if unlisted is None:
        return
    for key, (col, engine_type) in sorted(live.items()):
        if key not in expected:
            severity = ERROR if unlisted == "error" else WARNING
            yield Finding(
                severity,
                "new_column",
                obj,
                name,
                col,
                f"{engine_type}: not in the policy, so "
                + (
                    "the policy forbids it (unlisted_columns: error)"
                    if severity == ERROR
                    else "it stays out of the view"
                ),
            )


_SUGGESTED = (("int", "integer"), ("numeric", "decimal"), ("decimal", "decimal"),
              ("number", "decimal"), ("double", "float"), ("float", "float"), ("real", "float"),
              ("timestamp with time zone", "timestamptz"), ("timestamptz", "timestamptz"),
              ("timestamp", "timestamp"), ("datetime", "timestamp"), ("date", "date"),
              ("bool", "boolean"))  # fmt: skip


def _undeclared(step: ColumnStep, engine_type: str) -> str | None:
    """A transform that works on canonical text, over a non-text column without `type:`: it
    reads the engine's own text of the value, which differs between engines (a BIGINT key's
    pseudonyms would not join across warehouses)."""
    if step.type_declared or not REGISTRY[step.transform].reads_canonical_text:
        return None
    if engine_family(engine_type) in (None, "text"):
        return None
    lower = engine_type.lower()
    suggested = next((t for pattern, t in _SUGGESTED if pattern in lower), None)
    declare = f"`type: {suggested}`" if suggested else "its `type:`"
    return (
        f"{engine_type} read as text by {step.transform}: declare {declare} so that every "
        "engine uses the same canonical text (docs/transforms.md#canonical-text)"
    )


def _type_problem(step: ColumnStep | str, engine_type: str) -> str | None:
    live = engine_family(engine_type)
    if isinstance(step, str):  # a measured column: sums and averages need numbers
        return None if live in (None, "number") else f"needs a number; it is now {engine_type}"
    if live is None or step.transform == "drop":
        return None
    if step.type_declared and step.input_type is not None:
        want = LOGICAL_FAMILY[step.input_type]
        if live != want:
            return f"declared {step.input_type}, the column is now {engine_type}"
        return None
    accepts = {LOGICAL_FAMILY[t] for t in REGISTRY[step.transform].accepts}
    if live not in accepts:
        return (
            f"{step.transform} takes {', '.join(sorted(accepts))}; the column is now {engine_type}"
        )
    return None


def located(findings: list[Finding], policies: list[PolicySpec]) -> list[Diagnostic]:
    """Each finding as a policy diagnostic at the line that reads the column (the table's or
    release's own line when no column entry does), for commands that stop on them."""
    parts: dict[str, Any] = {}
    for p in policies:
        for t in p.tables:
            parts.setdefault(f"table {t.id}", t)
        for r in p.releases:
            parts.setdefault(f"release {r.id}", r)
    out = []
    for f in findings:
        part = parts.get(f.object)
        loc = None
        if part is not None:
            loc = part.loc
            entries = part.columns if hasattr(part, "columns") else part.group_by
            for spec in entries:
                if f.column is not None and spec.source.lower() == f.column.lower():
                    loc = spec.loc
                    break
        out.append(Diagnostic(loc, f"{f.where}: {f.detail}"))
    return out
