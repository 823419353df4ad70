"""Incremental planning: after an edit of a few tables, read and plan only those tables.

A plan is the concatenation of each policy file's part (its views, releases, synthetic
tables, budget and input files), and a view's plan depends only on its table's entry, the
rest of its policy file (the header: name, keys, defaults, releases, …) and the files the
entry reads. So a part remembers, per table, the digest of its entry's text (cut from the
file without parsing it, sqlanon/policy/chunks.py), the keys it uses and the files it read.
After an edit the file is read again with the unchanged entries' lines blank — the header is
read whole, every location stays where it was — and the unchanged tables' view plans are
reused.

Anything less plain returns None and the caller plans afresh: a changed header or fragment,
a file that cannot be cut, tables only removed or moved, a policy error (so every error is
reported exactly as a fresh compile reports it), two objects writing one target. The output
is the fresh compile's, byte for byte (tests/test_compile.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlanon.plan.build import build_plan, merged_inputs
from sqlanon.plan.model import (
    Budget,
    InputFile,
    Plan,
    PolicyRef,
    ReleasePlan,
    SyntheticPlan,
    ViewPlan,
)
from sqlanon.policy.chunks import Chunk, Cut, cut_tables
from sqlanon.policy.diagnostics import Location, PolicyError
from sqlanon.policy.load import load_policy
from sqlanon.policy.model import KeyUses, PolicySpec, TableFacts


@dataclass(frozen=True)
class TableRecord:
    entry_sha256: str  # the digest of the table's entry text
    facts: TableFacts


@dataclass(frozen=True)
class PlanPart:
    """One policy file's share of a plan, and what an incremental compile of it needs."""

    path: str  # resolved
    ref: PolicyRef
    views: tuple[ViewPlan, ...]
    releases: tuple[ReleasePlan, ...]
    synthetic: tuple[SyntheticPlan, ...]
    budgets: tuple[Budget, ...]
    inputs: tuple[InputFile, ...]
    header_sha256: str | None  # None: the file cannot be cut, planned whole each time
    tables: tuple[TableRecord, ...]


def assemble(parts: list[PlanPart]) -> Plan:
    """The plan build_plan makes of the parts' policies."""
    return Plan(
        policies=tuple(p.ref for p in parts),
        views=tuple(v for p in parts for v in p.views),
        inputs=merged_inputs(i for p in parts for i in p.inputs),
        releases=tuple(r for p in parts for r in p.releases),
        budgets=tuple(b for p in parts for b in p.budgets),
        synthetic=tuple(s for p in parts for s in p.synthetic),
    )


def parts_of(specs: list[PolicySpec], plan: Plan, texts: list[bytes]) -> list[PlanPart]:
    """The plan of `specs` cut into one part per policy; `texts` the files' bytes as read."""
    parts: list[PlanPart] = []
    v = r = s = b = 0
    for spec, text in zip(specs, texts, strict=True):
        nv, nr, ns = len(spec.tables), len(spec.releases), len(spec.synthetic)
        nb = int(spec.budget is not None)
        header, tables = _records(spec, text)
        parts.append(
            PlanPart(
                str(Path(spec.file).resolve()),
                plan.policies[len(parts)],
                plan.views[v : v + nv],
                plan.releases[r : r + nr],
                plan.synthetic[s : s + ns],
                plan.budgets[b : b + nb],
                merged_inputs(spec.inputs),
                header,
                tables,
            )
        )
        v, r, s, b = v + nv, r + nr, s + ns, b + nb
    return parts


def _records(spec: PolicySpec, text: bytes) -> tuple[str | None, tuple[TableRecord, ...]]:
    """The header's digest and each table's record, if the text read is the one loaded and
    cuts into exactly its tables; else (None, ())."""
    if _sha(text) != spec.sha256 or len(spec.table_facts) != len(spec.tables):
        return None, ()
    cut = cut_tables(text.decode("utf-8"))
    if cut is None or [c.id for c in cut.chunks] != [t.id for t in spec.tables]:
        return None, ()
    records = zip(cut.chunks, spec.table_facts, strict=True)
    return cut.header_sha256, tuple(TableRecord(c.sha256, f) for c, f in records)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unchanged(inputs: Iterable[InputFile], digests: dict[str, str | None]) -> bool:
    """Whether every file still has its digest; `digests` holds the files read so far in this
    compile, so a hierarchy many tables read is read and hashed once."""
    for i in inputs:
        if i.path not in digests:
            try:
                digests[i.path] = _sha(Path(i.path).read_bytes())
            except OSError:
                digests[i.path] = None
        if digests[i.path] != i.sha256:
            return False
    return True


def replan(
    parts: list[PlanPart], files: list[tuple[Path, str]]
) -> tuple[Plan, list[PlanPart], int] | None:
    """The plan of the policy `files` (path, display), reusing `parts` of an earlier plan of
    the same files: (plan, its parts, how many tables were read again), or None when this
    edit is not one to take incrementally."""
    if [p.path for p in parts] != [str(path.resolve()) for path, _ in files]:
        return None
    out: list[PlanPart] = []
    read = 0
    digests: dict[str, str | None] = {}
    for part, (path, display) in zip(parts, files, strict=True):
        try:
            text = path.read_bytes()
        except OSError:
            return None
        others = [i for i in part.inputs if i.role != "policy"]
        if _sha(text) == part.ref.sha256 and _unchanged(others, digests):
            out.append(part)
            continue
        found = _replan_part(part, path, display, text, digests)
        if found is None:
            return None
        out.append(found[0])
        read += found[1]
    if target_written_twice(out):
        return None  # a fresh compile reports where
    return assemble(out), out, read


def target_written_twice(parts: list[PlanPart]) -> bool:
    """Whether two objects of the parts write one target (names compared case-insensitively,
    as policy/load.py's check of a whole read does)."""
    targets = [v.target for p in parts for v in p.views]
    targets += [r.target for p in parts for r in p.releases]
    targets += [s.target for p in parts for s in p.synthetic]
    folded = [tuple(x.lower() for x in t) for t in targets]
    return len(set(folded)) != len(folded)


def _replan_part(
    part: PlanPart, path: Path, display: str, text: bytes, digests: dict[str, str | None]
) -> tuple[PlanPart, int] | None:
    if part.header_sha256 is None:
        return None
    table_inputs = {i for t in part.tables for i in t.facts.inputs}
    header_inputs = [i for i in part.inputs if i.role != "policy" and i not in table_inputs]
    if not _unchanged(header_inputs, digests):
        return None  # a fragment (or a release's hierarchy) changed: every table may read it
    try:
        cut = cut_tables(text.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if cut is None or cut.header_sha256 != part.header_sha256:
        return None
    before = {t.entry_sha256: i for i, t in enumerate(part.tables)}
    reused: dict[int, int] = {}  # entry number → the earlier table it repeats
    for j, chunk in enumerate(cut.chunks):
        i = before.get(chunk.sha256)
        if i is not None and _unchanged(part.tables[i].facts.inputs, digests):
            reused[j] = i
    fresh = [j for j in range(len(cut.chunks)) if j not in reused]
    if not fresh:
        return None  # tables only removed or moved: rare, planned afresh
    spec = _read_some(part, path, display, cut, reused, set(fresh))
    if spec is None or [t.id for t in spec.tables] != [cut.chunks[j].id for j in fresh]:
        return None
    try:
        plan = build_plan([spec])
    except PolicyError:
        return None
    new_views = dict(zip(fresh, plan.views, strict=True))
    new_facts = dict(zip(fresh, spec.table_facts, strict=True))
    views, tables = [], []
    for j, chunk in enumerate(cut.chunks):
        if j in reused:
            views.append(part.views[reused[j]])
            tables.append(part.tables[reused[j]])
        else:
            views.append(new_views[j])
            tables.append(TableRecord(chunk.sha256, new_facts[j]))
    return part_of(part.path, text, cut, spec, plan, tuple(views), tuple(tables)), len(fresh)


def part_of(
    path: str,
    text: bytes,
    cut: Cut,
    spec: PolicySpec,
    plan: Plan,
    views: tuple[ViewPlan, ...],
    tables: tuple[TableRecord, ...],
) -> PlanPart:
    """The part of the policy file `text` whose header `spec` and `plan` were read with some of
    its entries, the whole file's `views` and table records given: the file's own digest, its
    header's inputs and every table's."""
    sha = _sha(text)
    inputs = [i for i in spec.inputs if i.role != "policy"]
    inputs += [i for t in tables for i in t.facts.inputs]
    inputs.append(InputFile(spec.file, sha, "policy"))
    (ref,) = plan.policies
    return PlanPart(
        path,
        replace(ref, sha256=sha),
        views,
        plan.releases,
        plan.synthetic,
        plan.budgets,
        merged_inputs(inputs),
        cut.header_sha256,
        tables,
    )


def _read_some(
    part: PlanPart, path: Path, display: str, cut: Cut, reused: dict[int, int], keep: set[int]
) -> PolicySpec | None:
    """The policy read with only the entries in `keep`, the others' key uses given."""
    others = uses_of(display, [(cut.chunks[j], part.tables[i].facts) for j, i in reused.items()])
    try:
        return load_policy(path, display, text=cut.blanked(keep), other_uses=others)
    except PolicyError:
        return None


def uses_of(display: str, entries: Iterable[tuple[Chunk, TableFacts]]) -> KeyUses:
    """The key uses of entries left out of a read, each placed at its entry's first line."""
    uses = KeyUses()
    for chunk, facts in entries:
        where = Location(display, chunk.line, 3)
        for key, purpose in facts.key_uses:
            uses.use(key, purpose, where)
    return uses
