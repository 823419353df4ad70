"""One table entry: source, target, grants, retention, sampling, columns and the privacy
models (k-anonymity, l-diversity, t-closeness) over its columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlanon.plan.model import SourceQuery
from sqlanon.policy.check import Checker, Number, relation_name
from sqlanon.policy.columns import read_column
from sqlanon.policy.diagnostics import Location, did_you_mean, one_of
from sqlanon.policy.fragments import Loaded
from sqlanon.policy.model import (
    SAMPLE,
    ColumnSpec,
    KAnonymitySpec,
    KeyUses,
    RetentionSpec,
    SampleSpec,
    SensitiveSpec,
    TableSpec,
)
from sqlanon.policy.sources import check_reads, read_source
from sqlanon.policy.utility import TABLE_CHECKS, read_checks
from sqlanon.policy.yamltree import YMap, YNode, YScalar, YSeq
from sqlanon.transforms.base import Name

TABLE_KEYS = (
    "source",
    "target",
    "description",
    "grants",
    "retention",
    "sample",
    "columns",
    "k_anonymity",
    "l_diversity",
    "t_closeness",
    "utility",
)

RESERVED_PREFIX = "_sqlanon"


def read_table(
    chk: Checker,
    tid: str,
    knode: YScalar,
    node: YNode,
    base: Path,
    loaded: Loaded,
    key_uses: KeyUses,
) -> TableSpec | None:
    what = f"table '{tid}'"
    m = chk.mapping(
        node, what, TABLE_KEYS, required=("source", "target", "columns"), parent_loc=knode.loc
    )
    if m is None:
        return None
    source = read_source(chk, m.get("source"), f"the source of {what}") if m.get("source") else None
    target = (
        relation_name(chk, m.get("target"), f"the target of {what}") if m.get("target") else None
    )
    grants: tuple[str, ...] = ()
    if m.get("grants") is not None:
        grants = tuple(g for g, _ in chk.string_list(m.get("grants"), f"the grants of {what}"))
    description = (
        chk.string(m.get("description"), f"the description of {what}", non_empty=False)
        if m.get("description")
        else None
    )

    columns: list[ColumnSpec] = []
    cols_node = m.get("columns")
    cm = chk.mapping(cols_node, f"the columns of {what}", open_keys=True) if cols_node else None
    if cm is not None:
        if not cm.entries:
            chk.error(cm.loc, f"{what} lists no columns", expected="at least one column")
        lowered: dict[str, YScalar] = {}
        for cname, (ckey, cnode) in cm.entries.items():
            if cname.lower().startswith(RESERVED_PREFIX):
                chk.error(
                    ckey.loc,
                    f"column name '{cname}' uses the reserved prefix '{RESERVED_PREFIX}'",
                    expected="a name not starting with _sqlanon",
                )
                continue
            if cname.lower() in lowered:
                chk.error(
                    ckey.loc,
                    f"column '{cname}' differs from another only by case",
                    expected="column names unique regardless of case (most warehouses fold case)",
                    hint=f"the other is at line {lowered[cname.lower()].line}",
                )
                continue
            lowered[cname.lower()] = ckey
            col = read_column(chk, cname, ckey, cnode, base, loaded, key_uses)
            if col is not None:
                columns.append(col)
        if cm.entries and columns and all(c.transform == "drop" for c in columns):
            chk.error(
                cm.loc,
                f"{what} drops every column",
                expected="at least one column kept or transformed",
                hint="remove the table from the policy instead",
            )
    by_name = dict(cm.entries) if cm else {}
    emitted = {c.name: c for c in columns if c.transform != "drop"}

    retention = None
    if m.get("retention") is not None:
        r = chk.mapping(
            m.get("retention"), f"the retention of {what}", required=("column", "max_age_days")
        )
        if r is not None and r.get("column") is not None and r.get("max_age_days") is not None:
            at = chk.string(r.get("column"), "the retention column")
            days = chk.integer(r.get("max_age_days"), "max_age_days", 1, 1_000_000)
            if at is not None and days is not None:
                retention = RetentionSpec(at, days, r.loc)

    sample = None
    if m.get("sample") is not None:
        s = chk.mapping(
            m.get("sample"), f"the sample of {what}", required=("unit", "fraction", "key")
        )
        if s is not None and all(s.get(k) is not None for k in ("unit", "fraction", "key")):
            unit = chk.string(s.get("unit"), "the sampling unit")
            fraction = chk.number(
                s.get("fraction"), "the sampling fraction", 0, 1, exclusive_minimum=True
            )
            key = Name().read(chk, s.get("key"), "the sampling key")
            if unit is not None and fraction is not None and key is not None:
                sample = SampleSpec(unit, fraction, key, s.loc)
                key_uses.use(key, SAMPLE, s.value_loc("key"))

    kanon = None
    if m.get("k_anonymity") is not None:
        k = chk.mapping(
            m.get("k_anonymity"),
            f"the k_anonymity of {what}",
            ("action",),
            required=("quasi_identifiers", "k"),
        )
        if k is not None and k.get("quasi_identifiers") is not None and k.get("k") is not None:
            qis = chk.string_list(k.get("quasi_identifiers"), "quasi_identifiers")
            kval = chk.integer(k.get("k"), "k", 2, 1_000_000)
            action = "suppress"
            if k.get("action") is not None:
                action = (
                    chk.enum(k.get("action"), "k-anonymity action", ("suppress", "fail"))
                    or "suppress"
                )
            good = True
            seen: set[str] = set()
            if not qis and isinstance(k.get("quasi_identifiers"), YSeq):
                chk.error(
                    k.value_loc("quasi_identifiers"),
                    "quasi_identifiers is empty",
                    expected="at least one column",
                )
                good = False
            for q, qloc in qis:
                if q in seen:
                    chk.error(
                        qloc,
                        f"quasi-identifier '{q}' is listed twice",
                        expected="each quasi-identifier once",
                    )
                    good = False
                seen.add(q)
                good &= check_member(chk, q, qloc, "quasi-identifier", what, by_name, emitted)
            if good and kval is not None:
                kanon = KAnonymitySpec(tuple(q for q, _ in qis), kval, action, k.loc)

    ldiv = read_sensitive(chk, m, "l_diversity", "l", what, by_name, emitted, kanon)
    tclose = read_sensitive(chk, m, "t_closeness", "t", what, by_name, emitted, kanon)
    utility = read_checks(chk, m.get("utility"), what, TABLE_CHECKS, emitted)
    if isinstance(source, SourceQuery):  # (locations are costly: only for a query's reads)
        reads = [(c.source, c.loc) for c in columns]
        reads += [(r.column, r.loc) for r in (retention,) if r]
        reads += [(s.unit, s.loc) for s in (sample,) if s]
        check_reads(chk, source, reads, what)
    if source is None or target is None or cm is None:
        return None
    return TableSpec(
        tid,
        knode.loc,
        source,
        target,
        m.value_loc("target"),
        grants,
        tuple(columns),
        retention,
        sample,
        kanon,
        ldiv,
        tclose,
        description,
        utility,
    )


def check_member(
    chk: Checker,
    name: str,
    loc: Location,
    role: str,
    what: str,
    listed: dict[str, Any],
    emitted: dict[str, ColumnSpec],
) -> bool:
    if name in emitted:
        return True
    if name in listed:
        chk.error(
            loc,
            f"{role} '{name}' is dropped from {what}",
            expected=f"a {role} that is a column of the view",
        )
        return False
    chk.error(
        loc,
        f"{role} '{name}' is not a column of {what}",
        expected=one_of(emitted) if emitted else "a column of the view",
        hint=did_you_mean(name, emitted),
    )
    return False


def read_sensitive(
    chk: Checker,
    m: YMap,
    key: str,
    param: str,
    what: str,
    listed: dict[str, Any],
    emitted: dict[str, ColumnSpec],
    kanon: KAnonymitySpec | None,
) -> SensitiveSpec | None:
    node = m.get(key)
    if node is None:
        return None
    s = chk.mapping(node, f"the {key} of {what}", required=("sensitive", param))
    if s is None or s.get("sensitive") is None or s.get(param) is None:
        return None
    col = chk.string(s.get("sensitive"), "the sensitive column")
    level: Number | None
    if param == "l":
        level = chk.integer(s.get("l"), "l", 2, 1_000_000)
    else:
        level = chk.number(s.get("t"), "t", 0, 1, exclusive_minimum=True)
    if col is None or level is None:
        return None
    if not check_member(
        chk, col, s.value_loc("sensitive"), "sensitive column", what, listed, emitted
    ):
        return None
    if kanon and col in kanon.quasi_identifiers:
        chk.error(
            s.value_loc("sensitive"),
            f"'{col}' is both a quasi-identifier and sensitive",
            expected="a sensitive column that is not a quasi-identifier",
        )
        return None
    return SensitiveSpec(col, level, s.loc)
