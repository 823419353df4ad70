"""Differentially private releases: group-by columns (written like table columns), group
selection, contribution bounds and measures. The mechanism is in sqlanon/dp/."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sqlanon.plan import canonical
from sqlanon.plan.model import Expression, SourceQuery
from sqlanon.plan.types import ALL_TYPES, NUMERIC_TYPES
from sqlanon.policy.check import Checker, Number, has_control, relation_name
from sqlanon.policy.columns import read_column
from sqlanon.policy.diagnostics import did_you_mean, one_of
from sqlanon.policy.fragments import Loaded
from sqlanon.policy.model import NOISE, ColumnSpec, KeyUses, MeasureSpec, ReleaseSpec
from sqlanon.policy.sources import check_reads, read_measure_input, read_source, source_dialect
from sqlanon.policy.utility import RELEASE_CHECKS, read_checks
from sqlanon.policy.yamltree import YMap, YNode, YScalar, YSeq, describe
from sqlanon.transforms import REGISTRY
from sqlanon.transforms.base import Name

RELEASE_KEYS = (
    "source",
    "target",
    "description",
    "privacy_unit",
    "unit_type",
    "epsilon",
    "delta",
    "group_by",
    "groups",
    "bounds",
    "measures",
    "grants",
    "key",
    "utility",
)
AGGREGATES = ("count_units", "count", "sum", "avg")
MAX_EPSILON = 100
# a measure column's type: numbers, or text holding numbers (parsed; anything else skipped)
MEASURE_TYPES = (*NUMERIC_TYPES, "text")


def read_release(
    chk: Checker,
    rid: str,
    knode: YScalar,
    node: YNode,
    base: Path,
    loaded: Loaded,
    key_uses: KeyUses,
) -> ReleaseSpec | None:
    what = f"release '{rid}'"
    m = chk.mapping(
        node,
        what,
        RELEASE_KEYS,
        required=("source", "target", "privacy_unit", "epsilon", "measures"),
        parent_loc=knode.loc,
    )
    if m is None:
        return None
    src = read_source(chk, m.get("source"), f"the source of {what}") if m.get("source") else None
    tgt = relation_name(chk, m.get("target"), f"the target of {what}") if m.get("target") else None
    unit = chk.string(m.get("privacy_unit"), "privacy_unit") if m.get("privacy_unit") else None
    unit_type = "text"
    if m.get("unit_type") is not None:
        unit_type = chk.enum(m.get("unit_type"), "type for the privacy unit", ALL_TYPES) or "text"
    eps = (
        chk.number(m.get("epsilon"), "epsilon", 0, MAX_EPSILON, exclusive_minimum=True)
        if m.get("epsilon") is not None
        else None
    )
    delta: Number | None = 0
    if m.get("delta") is not None:
        delta = chk.number(m.get("delta"), "delta", 0, 1)
        if delta is not None and delta >= 1:
            chk.error(
                m.value_loc("delta"),
                "delta must be below 1",
                expected="a small number such as 1.0e-6",
            )
            delta = None
    key = Name().read(chk, m.get("key"), "the noise key") if m.get("key") else "noise"
    grants: tuple[str, ...] = ()
    if m.get("grants") is not None:
        grants = tuple(g for g, _ in chk.string_list(m.get("grants"), f"the grants of {what}"))

    group_by = read_groupable_columns(chk, m.get("group_by"), what, base, loaded)
    raw = _groups(chk, m.get("groups"), len(group_by or ()), what)
    public: tuple[tuple[str, ...], ...] | Literal[False] | None
    if raw is None or raw is False:
        public = raw
    elif group_by is not None:
        public = _typed_groups(chk, raw, group_by) if raw else ()
    else:
        public = False  # no group columns to type the values by (their error is reported)
    bounds = _bounds(chk, m.get("bounds"))
    measures = _measures(chk, m.get("measures"), what, source_dialect(src))
    if isinstance(src, SourceQuery):
        reads = [(unit, m.value_loc("privacy_unit"))] if unit else []
        reads += [(g.source, g.loc) for g in group_by or ()]
        for x in measures or ():
            columns = (
                (x.column,) if isinstance(x.column, str) else x.column.columns if x.column else ()
            )
            reads += [(c, x.loc) for c in columns]
        check_reads(chk, src, reads, what)

    if group_by is not None and measures is not None:
        _check_output_names(chk, m, what)
    utility = read_checks(
        chk, m.get("utility"), what, RELEASE_CHECKS, (x.name for x in measures or ())
    )

    if public is None and delta == 0 and m.get("delta") is not None:
        chk.error(
            m.value_loc("delta"),
            f"{what} selects groups by a noisy threshold, which needs delta > 0",
            expected="delta such as 1.0e-6",
            hint="or list the groups to release: `groups: {public: [...]}`",
        )
    elif public is None and m.get("delta") is None:
        chk.error(
            m.loc,
            f"{what} selects groups by a noisy threshold and needs `delta`",
            expected="`delta: 1.0e-6` (the chance that a group of one unit is released)",
            hint="or list the groups to release: `groups: {public: [...]}`",
        )
    if (
        src is None
        or tgt is None
        or unit is None
        or eps is None
        or delta is None
        or group_by is None
        or bounds is None
        or measures is None
        or key is None
        or public is False
    ):
        return None
    if key:
        key_uses.use(key, NOISE, m.value_loc("key") if m.get("key") else knode.loc)
    return ReleaseSpec(
        id=rid,
        loc=knode.loc,
        source=src,
        target=tgt,
        target_loc=m.value_loc("target"),
        privacy_unit=unit,
        unit_type=unit_type,
        epsilon=eps,
        delta=delta,
        group_by=tuple(group_by),
        public_groups=public,
        max_groups_per_unit=bounds[0],
        max_rows_per_unit_per_group=bounds[1],
        max_rows_per_unit=bounds[2],
        measures=tuple(measures),
        grants=grants,
        key=key,
        description=chk.string(m.get("description"), "description", non_empty=False)
        if m.get("description")
        else None,
        utility=utility,
    )


MEASURE_COLUMNS = ("", "_ci_low", "_ci_high", "_epsilon", "_delta")


def _check_output_names(chk: Checker, m: YMap, what: str) -> None:
    """The release table's columns (epoch, the groups, five per measure) must be distinct,
    compared as the warehouse would: regardless of case."""
    seen: dict[str, str] = {"epoch": "the epoch column"}
    for part, label, suffixes in (
        ("group_by", "group", ("",)),
        ("measures", "measure", MEASURE_COLUMNS),
    ):
        node = m.get(part)
        if not isinstance(node, YMap):
            continue
        for name, (key, _) in node.entries.items():
            for suffix in suffixes:
                column = name + suffix
                other = seen.get(column.lower())
                if other is not None:
                    chk.error(
                        key.loc,
                        f"{what} would have two columns named {column!r}: this {label} and {other}",
                        expected="distinct group and measure names",
                        hint="rename one of them",
                    )
                    break
                seen[column.lower()] = f"{label} {name!r}"


def read_groupable_columns(
    chk: Checker,
    node: YNode | None,
    what: str,
    base: Path,
    loaded: Loaded,
) -> list[ColumnSpec] | None:
    if node is None:
        return []
    g = chk.mapping(node, f"the group_by of {what}", open_keys=True)
    if g is None:
        return None
    out: list[ColumnSpec] = []
    ok = True
    for gname, (gk, gv) in g.entries.items():
        col = read_column(chk, gname, gk, gv, base, loaded, KeyUses())
        if col is None:
            ok = False
            continue
        if not REGISTRY[col.transform].groupable:
            chk.error(
                gk.loc,
                f"group '{gname}' uses '{col.transform}', which does not make a group key",
                expected=one_of(sorted(n for n, t in REGISTRY.items() if t.groupable)),
            )
            ok = False
            continue
        out.append(col)
    return out if ok else None


PublicGroups = tuple[tuple[tuple[str, YNode], ...], ...]


def _groups(
    chk: Checker, node: YNode | None, width: int, what: str
) -> PublicGroups | Literal[False] | None:
    """None: noisy threshold selection; a tuple: the public groups (each value's text and
    node); False: an error."""
    if node is None:
        return None
    g = chk.mapping(node, "groups", ("threshold", "public"))
    if g is None:
        return False
    if (g.get("threshold") is None) == (g.get("public") is None):
        chk.error(
            g.loc,
            "groups take either `threshold: auto` or `public: [...]`",
            expected="one of the two",
        )
        return False
    t = g.get("threshold")
    if t is not None:
        if not (isinstance(t, YScalar) and t.value == "auto"):
            chk.error(
                t.loc,
                f"the group threshold must be `auto`, not {describe(t)}",
                expected="`threshold: auto` (computed from epsilon, delta and the bounds)",
            )
            return False
        return None
    seq = chk.seq(g.get("public"), "public groups")
    if seq is None:
        return False
    rows: list[tuple[tuple[str, YNode], ...]] = []
    for item in seq.items:
        values = item.items if isinstance(item, YSeq) else [item]
        if len(values) != width:
            chk.error(
                item.loc,
                f"a public group of {what} must give {width} value(s), one per group_by column",
                expected=f"{width} value(s)",
            )
            return False
        texts = []
        for v in values:
            s = chk.scalar(v, "a public group value", "a value")
            if s is None:
                return False
            if has_control(s.text):
                chk.error(
                    v.loc,
                    "a public group value must not contain control characters",
                    expected="printable text",
                )
                return False
            texts.append((s.text, v))
        rows.append(tuple(texts))
    return tuple(rows)


def _typed_groups(
    chk: Checker, rows: PublicGroups, group_by: list[ColumnSpec]
) -> tuple[tuple[str, ...], ...] | Literal[False]:
    """Each public value as the canonical text of its group column's type: the engine joins
    on that text, so `1` and `1.0` of a float column are one group (refused twice), and a
    value that is not of the type could never match (refused)."""
    out: list[tuple[str, ...]] = []
    seen: dict[tuple[str, ...], YNode] = {}
    for row in rows:
        typed = []
        for (text, vnode), col in zip(row, group_by, strict=True):
            type_ = col.output_type or "text"
            try:
                typed.append(canonical.of_text(text, type_))
            except canonical.NotOfType as exc:
                chk.error(
                    vnode.loc,
                    f"public group value {text!r} is not a {type_} value of group '{col.name}'",
                    expected=str(exc),
                )
                return False
        key = tuple(typed)
        if key in seen:
            chk.error(
                row[0][1].loc,
                f"public group {', '.join(t for t, _ in row)} is the same group as one listed "
                f"before (read as the group columns' types: {', '.join(key)})",
                expected="each group once",
            )
            return False
        seen[key] = row[0][1]
        out.append(key)
    return tuple(out)


def _bounds(chk: Checker, node: YNode | None) -> tuple[int, int, int | None] | None:
    """(groups per unit, rows per unit and group, rows per unit or None). With only a total
    given, the other two default to it (they then restrict nothing); otherwise to 1."""
    if node is None:
        return (1, 1, None)
    keys = ("max_groups_per_unit", "max_rows_per_unit_per_group", "max_rows_per_unit")
    b = chk.mapping(node, "bounds", keys)
    if b is None:
        return None
    total = b.get("max_rows_per_unit")
    t = chk.integer(total, "max_rows_per_unit", 1, 1_000_000) if total is not None else None
    if total is not None and t is None:
        return None
    groups, rows = (
        chk.integer(b.get(key), key, 1, 1_000_000) if b.get(key) is not None else (t or 1)
        for key in keys[:2]
    )
    return None if groups is None or rows is None else (groups, rows, t)


def _measures(
    chk: Checker, node: YNode | None, what: str, dialect: str
) -> list[MeasureSpec] | None:
    mm = chk.mapping(node, f"the measures of {what}", open_keys=True) if node else None
    if mm is None:
        return None
    if not mm.entries:
        chk.error(mm.loc, f"{what} has no measures", expected="at least one measure")
        return None
    out: list[MeasureSpec] = []
    ok = True
    for name, (mk, mv) in mm.entries.items():
        m = chk.mapping(
            mv,
            f"measure '{name}'",
            ("column", "clamp", "type"),
            required=("agg",),
            parent_loc=mk.loc,
        )
        if not isinstance(m, YMap) or m.get("agg") is None:
            ok = False
            continue
        agg = chk.enum(m.get("agg"), f"aggregate for measure '{name}'", AGGREGATES)
        if agg is None:
            ok = False
            continue
        column: str | Expression | None = None
        clamp = None
        input_type = "float"
        if agg in ("sum", "avg"):
            if m.get("column") is None or m.get("clamp") is None:
                chk.error(
                    m.loc,
                    f"measure '{name}' ({agg}) needs `column` and `clamp`",
                    expected="`column: <name>, clamp: [low, high]`",
                )
                ok = False
                continue
            text = chk.string(m.get("column"), f"the column of measure '{name}'")
            if text is not None:
                column = read_measure_input(
                    chk, text, m.value_loc("column"), dialect, f"measure '{name}'"
                )
            clamp = _clamp(chk, m.get("clamp"))
            if m.get("type") is not None:
                input_type = (
                    chk.enum(m.get("type"), f"type for measure '{name}'", MEASURE_TYPES) or "float"
                )
            if column is None or clamp is None:
                ok = False
                continue
        else:
            for extra in ("column", "clamp"):
                if m.get(extra) is not None:
                    chk.error(
                        m.key_loc(extra),
                        f"measure '{name}' ({agg}) takes no `{extra}`",
                        expected="only `agg:`",
                        hint=did_you_mean(agg, ("sum", "avg")),
                    )
                    ok = False
        out.append(MeasureSpec(name, agg, column, clamp, input_type, mk.loc))
    return out if ok else None


def _clamp(chk: Checker, node: YNode | None) -> tuple[Number, Number] | None:
    seq = chk.seq(node, "clamp")
    if seq is None:
        return None
    read = [chk.number(v, "a clamp bound") for v in seq.items]
    values = [v for v in read if v is not None]
    if len(read) != 2 or len(values) != 2 or not values[0] < values[1]:
        chk.error(
            seq.loc,
            "clamp must be [low, high] with low < high",
            expected="two numbers such as [0, 500]",
        )
        return None
    return (values[0], values[1])
