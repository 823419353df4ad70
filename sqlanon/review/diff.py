"""Privacy-impact diff of two plans (docs/diff.md): every change classified as weakened,
strengthened or neutral with its reason, for a reviewer reading a pull request.

Each rule below is one row of the table in docs/diff.md; tests/diff_cases.yml holds a case
per row. Compared are plans, not YAML: a change made through an included fragment or a
hierarchy file shows up the same as one written in the policy itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlanon.plan.model import (
    ColumnStep,
    Plan,
    ReleasePlan,
    Source,
    SourceQuery,
    SyntheticPlan,
    ViewPlan,
    source_label,
)
from sqlanon.transforms import REGISTRY
from sqlanon.transforms.truncate_date import UNITS

WEAKENED, STRENGTHENED, NEUTRAL = "weakened", "strengthened", "neutral"
ORDER = {WEAKENED: 0, STRENGTHENED: 1, NEUTRAL: 2}


@dataclass(frozen=True)
class Change:
    verdict: str
    object: str  # "customers.email", "customers", "release orders_by_status", "budget"
    change: str  # "pseudonymize → keep", "k: 5 → 3"
    reason: str
    note: str = ""  # a consequence worth saying even when privacy is unchanged


def _s(value: Any) -> str:
    if isinstance(value, Fraction):
        value = float(value)
    if isinstance(value, Decimal):
        value = format(value.normalize(), "f")
    if isinstance(value, tuple):
        return "[" + ", ".join(_s(v) for v in value) + "]"
    return "none" if value is None else str(value)


def _by_key(items: tuple[Any, ...], key: Any) -> dict[Any, Any]:
    return {key(x): x for x in items}


def compare(old: Plan, new: Plan) -> list[Change]:
    changes: list[Change] = []
    vkey = lambda v: (v.policy, v.name)  # noqa: E731
    before, after = _by_key(old.views, vkey), _by_key(new.views, vkey)
    for k in sorted(before.keys() - after.keys()):
        changes.append(Change(STRENGTHENED, k[1], "table removed", "its view is no longer built"))
    for k in sorted(after.keys() - before.keys()):
        v = after[k]
        changes.append(
            Change(
                WEAKENED,
                k[1],
                "table added",
                f"a new view releases {len(v.emitted_columns)} column(s) of "
                f"{source_label(v.source)}",
            )
        )
    for k in sorted(before.keys() & after.keys()):
        changes += _view(before[k], after[k])
    rkey = lambda r: (r.policy, r.name)  # noqa: E731
    rb, ra = _by_key(old.releases, rkey), _by_key(new.releases, rkey)
    for k in sorted(rb.keys() - ra.keys()):
        changes.append(
            Change(
                STRENGTHENED, f"release {k[1]}", "release removed", "its epsilon is no longer spent"
            )
        )
    for k in sorted(ra.keys() - rb.keys()):
        r = ra[k]
        changes.append(
            Change(
                WEAKENED,
                f"release {k[1]}",
                "release added",
                f"spends ε={_s(r.epsilon)}, δ={_s(r.delta)} per refresh",
            )
        )
    for k in sorted(rb.keys() & ra.keys()):
        changes += _release(rb[k], ra[k])
    sb, sa = _by_key(old.synthetic, rkey), _by_key(new.synthetic, rkey)
    for k in sorted(sb.keys() - sa.keys()):
        changes.append(
            Change(
                STRENGTHENED,
                f"synthetic {k[1]}",
                "synthetic table removed",
                "its epsilon is no longer spent",
            )
        )
    for k in sorted(sa.keys() - sb.keys()):
        t = sa[k]
        changes.append(
            Change(
                WEAKENED,
                f"synthetic {k[1]}",
                "synthetic table added",
                f"spends ε={_s(t.epsilon)} per refresh on {len(t.attributes)} column(s) of "
                f"{source_label(t.source)}",
            )
        )
    for k in sorted(sb.keys() & sa.keys()):
        changes += _synthetic(sb[k], sa[k])
    changes += _budgets(old, new)
    return sorted(changes, key=lambda c: (ORDER[c.verdict], c.object, c.change))


def _more(verdict_if_larger: str, a: Any, b: Any) -> str:
    """The verdict for a setting that went from a to b (both set, different)."""
    if b > a:
        return verdict_if_larger
    return STRENGTHENED if verdict_if_larger == WEAKENED else WEAKENED


def _view(a: ViewPlan, b: ViewPlan) -> Iterator[Change]:
    name = a.name
    if a.target != b.target:
        yield Change(
            NEUTRAL,
            name,
            f"target {'.'.join(a.target)} → {'.'.join(b.target)}",
            "the view moves",
            "readers of the old name lose it",
        )
    yield from _source(name, a.source, b.source)
    ca = {c.output: c for c in a.emitted_columns}
    cb = {c.output: c for c in b.emitted_columns}
    for col in sorted(ca.keys() - cb.keys()):
        yield Change(
            STRENGTHENED,
            f"{name}.{col}",
            f"{ca[col].transform} → dropped",
            "the column is no longer released",
        )
    for col in sorted(cb.keys() - ca.keys()):
        c = cb[col]
        if REGISTRY[c.transform].disclosure <= 1:
            yield Change(
                NEUTRAL,
                f"{name}.{col}",
                f"new column ({c.transform})",
                "it carries no source value",
            )
        else:
            yield Change(
                WEAKENED,
                f"{name}.{col}",
                f"new column ({c.transform})",
                f"releases {c.sources[0]} {'as is' if c.transform == 'keep' else 'transformed'}",
            )
    for col in sorted(ca.keys() & cb.keys()):
        yield from _column(f"{name}.{col}", ca[col], cb[col])

    ka, kb = a.k_anonymity, b.k_anonymity
    if ka and not kb:
        yield Change(WEAKENED, name, "k-anonymity removed", f"k={ka.k} is no longer enforced")
    elif kb and not ka:
        yield Change(
            STRENGTHENED,
            name,
            f"k-anonymity added (k={kb.k})",
            "small classes are suppressed" if kb.action == "suppress" else "measured",
        )
    elif ka and kb:
        if ka.k != kb.k:
            yield Change(
                _more(STRENGTHENED, ka.k, kb.k),
                name,
                f"k: {ka.k} → {kb.k}",
                "larger k: bigger crowds" if kb.k > ka.k else "smaller k: smaller crowds",
            )
        qa, qb = set(ka.quasi_identifiers), set(kb.quasi_identifiers)
        for q in sorted(qa - qb):
            yield Change(
                WEAKENED,
                name,
                f"quasi-identifier {q} removed",
                "k no longer covers it: it can single people out",
            )
        for q in sorted(qb - qa):
            yield Change(STRENGTHENED, name, f"quasi-identifier {q} added", "k now covers it too")
        if ka.action != kb.action:
            verdict = WEAKENED if kb.action == "fail" else STRENGTHENED
            yield Change(
                verdict,
                name,
                f"k action: {ka.action} → {kb.action}",
                "suppression no longer enforced in the view"
                if verdict == WEAKENED
                else "small classes are now suppressed in the view",
            )
    for label, x, y, attr, stronger_if_larger in (
        ("l", a.l_diversity, b.l_diversity, "l", True),
        ("t", a.t_closeness, b.t_closeness, "t", False),
    ):
        if x and not y:
            yield Change(
                WEAKENED,
                name,
                f"{label} requirement removed",
                f"{label}={_s(getattr(x, attr))} is no longer checked",
            )
        elif y and not x:
            yield Change(
                STRENGTHENED,
                name,
                f"{label} requirement added ({_s(getattr(y, attr))})",
                "`sqlanon risk` checks it",
            )
        elif x and y and getattr(x, attr) != getattr(y, attr):
            vx, vy = getattr(x, attr), getattr(y, attr)
            verdict = _more(STRENGTHENED if stronger_if_larger else WEAKENED, vx, vy)
            yield Change(
                verdict,
                name,
                f"{label}: {_s(vx)} → {_s(vy)}",
                "a looser requirement" if verdict == WEAKENED else "a stricter requirement",
            )
    ra, rb = a.retention, b.retention
    if ra != rb:
        if rb is None:
            yield Change(WEAKENED, name, "retention removed", "all history is released")
        elif ra is None:
            yield Change(
                STRENGTHENED,
                name,
                f"retention added ({rb.max_age_days} days)",
                "old rows are no longer released",
            )
        else:
            yield Change(
                _more(WEAKENED, ra.max_age_days, rb.max_age_days),
                name,
                f"retention: {ra.max_age_days} → {rb.max_age_days} days",
                "longer history released"
                if rb.max_age_days > ra.max_age_days
                else "shorter history released",
            )
    sa, sb = a.sample, b.sample
    if sa != sb:
        if sb is None:
            yield Change(WEAKENED, name, "sampling removed", "every row is released")
        elif sa is None:
            yield Change(
                STRENGTHENED,
                name,
                f"sampling added ({_s(sb.fraction)})",
                "only a keyed sample is released",
            )
        elif sa.fraction != sb.fraction:
            yield Change(
                _more(WEAKENED, sa.fraction, sb.fraction),
                name,
                f"sample: {_s(sa.fraction)} → {_s(sb.fraction)}",
                "a larger sample" if sb.fraction > sa.fraction else "a smaller sample",
            )
        else:
            yield Change(
                NEUTRAL,
                name,
                "sample key or unit changed",
                "another sample of the same size",
                "rows released change",
            )
    yield from _grants(name, a.grants, b.grants)


def _grants(name: str, a: tuple[str, ...], b: tuple[str, ...]) -> Iterator[Change]:
    for role in sorted(set(a) - set(b)):
        yield Change(STRENGTHENED, name, f"grant to {role} removed", "one role fewer can read it")
    for role in sorted(set(b) - set(a)):
        yield Change(WEAKENED, name, f"grant to {role} added", "one more role can read it")


def _column(obj: str, a: ColumnStep, b: ColumnStep) -> Iterator[Change]:
    if a.sources != b.sources:
        yield Change(
            NEUTRAL,
            obj,
            f"source {a.sources[0]} → {b.sources[0]}",
            "reads another column: review what it holds",
        )
    if a.transform != b.transform:
        ra, rb = REGISTRY[a.transform].disclosure, REGISTRY[b.transform].disclosure
        verdict = WEAKENED if rb > ra else STRENGTHENED if rb < ra else NEUTRAL
        reason = {
            WEAKENED: "the new transform lets more of the value through",
            STRENGTHENED: "the new transform lets less of the value through",
            NEUTRAL: "a different transform of the same strength: review",
        }[verdict]
        note = "pseudonyms no longer join" if "pseudonymize" in (a.transform, b.transform) else ""
        yield Change(verdict, obj, f"{a.transform} → {b.transform}", reason, note)
        return
    pa, pb = dict(a.params), dict(b.params)
    regrouped = a.transform == "generalize" and a.lookup != b.lookup
    for p in sorted(set(pa) | set(pb)):
        x, y = pa.get(p), pb.get(p)
        if x == y or (regrouped and p == "level"):  # the partition below judges the level
            continue
        yield _param_change(obj, a.transform, p, x, y)
    if a.key and b.key and a.key != b.key and a.key.name == b.key.name:
        yield Change(
            NEUTRAL,
            obj,
            f"key {a.key.name} v{a.key.version} → v{b.key.version}",
            "key rotated",
            "pseudonyms change: joins with earlier outputs break",
        )
    if regrouped:
        yield _regrouped(obj, a, b)


def _classes(step: ColumnStep, values: set[str]) -> dict[str, str]:
    """Each value's released group: its ancestor at the level, the `unknown` label for a
    value the hierarchy lacks, itself at level 0."""
    if step.param("level") == 0:
        return {v: v for v in values}
    table = dict(step.lookup or ())
    unknown = step.param("unknown")
    return {v: table.get(v, unknown) for v in values}


def _compare_partitions(old: dict[str, str], new: dict[str, str]) -> tuple[int, int]:
    """(old groups split by the new one, new groups merging old ones) over the same values:
    a split releases finer groups than were approved."""
    old_groups: dict[str, set[str]] = {}
    new_groups: dict[str, set[str]] = {}
    for v in old:
        old_groups.setdefault(old[v], set()).add(new[v])
        new_groups.setdefault(new[v], set()).add(old[v])
    split = sum(len(targets) > 1 for targets in old_groups.values())
    merged = sum(len(sources) > 1 for sources in new_groups.values())
    return split, merged


def _regrouped(obj: str, a: ColumnStep, b: ColumnStep) -> Change:
    """A hierarchy's contents (or level) changed: judged by what it releases, the partition of
    every value either version knows — not by the file's text or the level number."""
    values = {v for v, _ in a.lookup or ()} | {v for v, _ in b.lookup or ()}
    split, merged = _compare_partitions(_classes(a, values), _classes(b, values))
    level_a, level_b = a.param("level"), b.param("level")
    text = f"level: {level_a} → {level_b}" if level_a != level_b else "hierarchy contents"
    if split:
        also = f", {merged} merged" if merged else ""
        return Change(WEAKENED, obj, text, f"{split} released group(s) split into finer ones{also}")
    if merged:
        return Change(STRENGTHENED, obj, text, f"{merged} group(s) now merge others")
    return Change(NEUTRAL, obj, text, "the same values are grouped together (labels changed)")


def _param_change(obj: str, transform: str, p: str, x: Any, y: Any) -> Change:
    text = f"{p}: {_s(x)} → {_s(y)}"
    sign = dict(REGISTRY[transform].larger_discloses_more).get(p)
    if sign is not None and x is not None and y is not None:
        weaker = (y > x) if sign > 0 else (y < x)
        return Change(
            WEAKENED if weaker else STRENGTHENED,
            obj,
            text,
            "more of the value is released" if weaker else "less of the value is released",
        )
    if transform == "truncate_date" and p == "to":
        finer = UNITS.index(y) > UNITS.index(x)
        return Change(
            WEAKENED if finer else STRENGTHENED,
            obj,
            text,
            "finer dates" if finer else "coarser dates",
        )
    if transform in ("bucket", "age") and p in ("min", "max"):
        wider = y is None or (x is not None and (y < x if p == "min" else y > x))
        return Change(
            WEAKENED if wider else STRENGTHENED,
            obj,
            text,
            "less top/bottom coding: extremes stand out more"
            if wider
            else "more top/bottom coding",
        )
    if transform in ("bucket", "age") and p == "edges" and x and y:
        # inner edges split buckets (the first edge only labels the open bottom bucket)
        added, removed = set(y[1:]) - set(x[1:]), set(x[1:]) - set(y[1:])
        if added:
            return Change(
                WEAKENED,
                obj,
                text,
                "buckets split at "
                + ", ".join(map(_s, sorted(added)))
                + (" (others merged)" if removed else ""),
            )
        if removed:
            return Change(STRENGTHENED, obj, text, "buckets merged: fewer, wider buckets")
    if transform == "pseudonymize" and p == "key":
        return Change(NEUTRAL, obj, text, "another key", "pseudonyms change: joins break")
    return Change(NEUTRAL, obj, text, "changes the output, not how much it reveals: review")


def _source(obj: str, a: Source, b: Source) -> Iterator[Change]:
    """Another relation, or an edited query: which rows and columns are read may change."""
    if a == b:
        return
    if isinstance(a, SourceQuery) and isinstance(b, SourceQuery) and a.reads == b.reads:
        yield Change(
            NEUTRAL,
            obj,
            f"source query over {_s(tuple('.'.join(r) for r in a.reads))} edited",
            "reads other rows or columns: review the query's diff",
        )
        return
    yield Change(
        NEUTRAL,
        obj,
        f"source {source_label(a)} → {source_label(b)}",
        "reads another relation: review what it holds",
    )


def _release(a: ReleasePlan, b: ReleasePlan) -> Iterator[Change]:
    obj = f"release {a.name}"
    yield from _loss(obj, a.epsilon, b.epsilon, a.delta, b.delta, "per refresh")
    yield from _source(obj, a.source, b.source)
    if a.privacy_unit != b.privacy_unit:
        yield Change(
            NEUTRAL,
            obj,
            f"privacy unit {a.privacy_unit} → {b.privacy_unit}",
            "protects another kind of individual: review",
        )
    bounds_a = (a.max_groups_per_unit, a.max_rows_per_unit_per_group, a.max_rows_per_unit)
    bounds_b = (b.max_groups_per_unit, b.max_rows_per_unit_per_group, b.max_rows_per_unit)
    if bounds_a != bounds_b:
        yield Change(
            NEUTRAL,
            obj,
            f"bounds {_s(bounds_a)} → {_s(bounds_b)}",
            "ε still holds; noise and bias change",
        )
    if _selection(a) != _selection(b) or a.public_groups != b.public_groups:
        yield Change(
            NEUTRAL,
            obj,
            f"groups {_selection(a)} → {_selection(b)}",
            "ε still holds; which groups appear changes",
        )
    ga = tuple(g.output for g in a.group_by)
    gb = tuple(g.output for g in b.group_by)
    if ga != gb or any(x.params != y.params for x, y in zip(a.group_by, b.group_by, strict=False)):
        yield Change(NEUTRAL, obj, f"group by {_s(ga)} → {_s(gb)}", "ε still holds; groups change")
    ma = {m.name: m for m in a.measures}
    mb = {m.name: m for m in b.measures}
    if set(ma) != set(mb) or any(ma[n].clamp != mb[n].clamp for n in set(ma) & set(mb)):
        yield Change(
            NEUTRAL,
            obj,
            f"measures {_s(tuple(sorted(ma)))} → {_s(tuple(sorted(mb)))}",
            "ε still holds; its split and the noise change",
        )
    for n in sorted(set(ma) & set(mb)):
        if ma[n].column != mb[n].column:
            yield Change(
                NEUTRAL,
                obj,
                f"measure {n} reads {ma[n].column} → {mb[n].column}",
                "ε still holds; another value is measured",
            )
    if a.key != b.key:
        yield Change(
            NEUTRAL,
            obj,
            f"noise key {a.key.name} v{a.key.version} → {b.key.name} v{b.key.version}",
            "fresh noise",
            "re-releasing an epoch with new noise spends its ε again",
        )
    yield from _grants(obj, a.grants, b.grants)


def _selection(r: ReleasePlan) -> str:
    """Which groups a release shows: the listed ones, or those whose noisy count of units (or,
    bounded by rows per unit alone, of bounded rows) clears the threshold. The threshold's value
    is left out: it follows ε, δ and the bounds, whose edits are reported themselves."""
    if r.selection is None:
        return f"public {_s(tuple(_s(g) for g in r.public_groups or ()))}"
    return "by noisy " + ("units" if r.selection.counts_units else "bounded rows")


def _synthetic(a: SyntheticPlan, b: SyntheticPlan) -> Iterator[Change]:
    """ε decides the guarantee; every other edit keeps it and changes what the rows show."""
    obj = f"synthetic {a.name}"
    yield from _loss(obj, a.epsilon, b.epsilon, 0, 0, "per refresh")
    yield from _source(obj, a.source, b.source)
    unit_a = (a.privacy_unit or "one row each", a.max_rows_per_unit)
    unit_b = (b.privacy_unit or "one row each", b.max_rows_per_unit)
    if unit_a != unit_b:
        yield Change(
            NEUTRAL,
            obj,
            f"privacy unit {_s(unit_a)} → {_s(unit_b)}",
            "protects another kind of individual, or bounds it otherwise: review",
        )
    names_a = [x.name for x in a.attributes]
    names_b = [x.name for x in b.attributes]
    steps_a = {x.name: x for x in a.attributes}
    for x in b.attributes:
        if x.name not in steps_a:
            yield Change(
                NEUTRAL,
                obj,
                f"column {x.name} added",
                "ε still holds; the rows show one more column",
            )
            continue
        before = steps_a[x.name]
        if before.step != x.step:
            for change in _column(f"{obj}.{x.name}", before.step, x.step):
                yield Change(
                    NEUTRAL, change.object, change.change, "ε still holds; " + change.reason
                )
        if before.domain != x.domain:
            yield Change(
                NEUTRAL,
                f"{obj}.{x.name}",
                f"domain {len(before.domain)} → {len(x.domain)} value(s)",
                "ε still holds; the values it may take change",
            )
    for name in names_a:
        if name not in names_b:
            yield Change(NEUTRAL, obj, f"column {name} removed", "ε still holds")
    pairs_a = {frozenset((names_a[p], names_a[c])) for p, c in a.edges}
    pairs_b = {frozenset((names_b[p], names_b[c])) for p, c in b.edges}
    if pairs_a != pairs_b or a.auto != b.auto:
        shown = [
            "auto" if t.auto else _s(tuple(sorted(" × ".join(sorted(p)) for p in x)))
            for t, x in ((a, pairs_a), (b, pairs_b))
        ]
        yield Change(
            NEUTRAL,
            obj,
            f"structure {shown[0]} → {shown[1]}",
            "ε still holds; which pairs keep their joint distribution changes",
        )
    if a.rows != b.rows:
        rows = ["noisy" if n is None else str(n) for n in (a.rows, b.rows)]
        yield Change(NEUTRAL, obj, f"rows {rows[0]} → {rows[1]}", "ε still holds")
    if a.key != b.key:
        yield Change(
            NEUTRAL,
            obj,
            f"noise key {a.key.name} v{a.key.version} → {b.key.name} v{b.key.version}",
            "fresh noise",
        )
    yield from _grants(obj, a.grants, b.grants)


def _loss(
    obj: str, eps_a: Any, eps_b: Any, delta_a: Any, delta_b: Any, per: str
) -> Iterator[Change]:
    """ε and δ: larger is weaker, for a release and for a budget alike."""
    for symbol, x, y, what in (
        ("ε", eps_a, eps_b, "privacy loss"),
        ("δ", delta_a, delta_b, "chance of an unbounded loss"),
    ):
        if x != y:
            weaker = y > x
            yield Change(
                WEAKENED if weaker else STRENGTHENED,
                obj,
                f"{symbol} {_s(x)} → {_s(y)}",
                f"{'more' if weaker else 'less'} {what} {per}",
            )


def _budgets(old: Plan, new: Plan) -> Iterator[Change]:
    ba = {b.policy: b for b in old.budgets}
    bb = {b.policy: b for b in new.budgets}
    for policy in sorted(set(ba) | set(bb)):
        x, y = ba.get(policy), bb.get(policy)
        if x is None or y is None:
            if x is not None or y is not None:
                yield Change(
                    NEUTRAL,
                    f"budget {policy}",
                    "budget added" if y else "budget removed",
                    "follows the releases",
                )
            continue
        yield from _loss(
            f"budget {policy}", x.epsilon, y.epsilon, x.delta, y.delta, "allowed per refresh"
        )


def changed_files(old: list[Any], new: list[Any]) -> list[tuple[str, str]]:
    """(path, added | removed | changed) for the generated SQL files whose statements differ;
    headers (tool version, policy path, digests) and manifest.json are left out."""

    def bodies(artifacts: list[Any]) -> dict[str, bytes]:
        return {
            a.path: a.content.split(b"\n\n", 1)[-1] for a in artifacts if a.path.endswith(".sql")
        }

    a, b = bodies(old), bodies(new)
    out = [(p, "removed") for p in a.keys() - b.keys()]
    out += [(p, "added") for p in b.keys() - a.keys()]
    out += [(p, "changed") for p in a.keys() & b.keys() if a[p] != b[p]]
    return sorted(out)
