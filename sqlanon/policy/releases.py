"""Differentially private releases: validated now so that policies can be written ahead;
compiled by a later version."""

from __future__ import annotations

from typing import Any

from ..transforms import REGISTRY
from .check import Checker, relation_name
from .model import (
    ReleaseSpec,
)
from .yamltree import YNode, YScalar

RELEASE_KEYS = (
    "source",
    "target",
    "description",
    "privacy_unit",
    "epsilon",
    "delta",
    "group_by",
    "groups",
    "bounds",
    "measures",
    "grants",
)
AGGREGATES = ("count_units", "count", "sum", "avg")


def read_release(chk: Checker, rid: str, knode: YScalar, node: YNode) -> ReleaseSpec | None:
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
    src = relation_name(chk, m.get("source"), f"the source of {what}") if m.get("source") else None
    tgt = relation_name(chk, m.get("target"), f"the target of {what}") if m.get("target") else None
    if m.get("privacy_unit") is not None:
        chk.string(m.get("privacy_unit"), "privacy_unit")
    eps = (
        chk.number(m.get("epsilon"), "epsilon", 0, 100, exclusive_minimum=True)
        if m.get("epsilon") is not None
        else None
    )
    delta: Any = 0
    if m.get("delta") is not None:
        delta = chk.number(m.get("delta"), "delta", 0, 1)
        if delta is not None and delta >= 1:
            chk.error(
                m.get("delta").loc,
                "delta must be below 1",
                expected="a small number such as 1.0e-6",
            )
    if m.get("group_by") is not None:
        g = chk.mapping(m.get("group_by"), "group_by", open_keys=True)
        for gname, (_, gv) in g.entries.items() if g else []:
            if isinstance(gv, YScalar):
                chk.enum(gv, f"grouping for group '{gname}'", ("keep",))
            else:
                gm = chk.mapping(gv, f"group '{gname}'", open_keys=True)
                if gm is not None and gm.get("transform") is not None:
                    chk.enum(
                        gm.get("transform"),
                        f"transform for group '{gname}'",
                        [t for t in REGISTRY if t not in ("drop", "nullify")],
                    )
    if m.get("groups") is not None:
        g = chk.mapping(m.get("groups"), "groups", ("threshold", "public"))
        if g is not None:
            if g.get("threshold") is not None and g.get("public") is not None:
                chk.error(
                    g.loc,
                    "groups take either `threshold` or `public`, not both",
                    expected="`threshold: auto` or `public: [...]`",
                )
            t = g.get("threshold")
            if isinstance(t, YScalar) and t.value != "auto":
                chk.number(t, "the group threshold", 0)
            if g.get("public") is not None:
                chk.seq(g.get("public"), "public groups")
    if m.get("bounds") is not None:
        b = chk.mapping(
            m.get("bounds"), "bounds", ("max_groups_per_unit", "max_rows_per_unit_per_group")
        )
        for bk, (_, bv) in b.entries.items() if b else []:
            chk.integer(bv, bk, 1, 1_000_000)
    measures = (
        chk.mapping(m.get("measures"), "measures", open_keys=True)
        if m.get("measures") is not None
        else None
    )
    for mname, (_, mv) in measures.entries.items() if measures else []:
        mm = chk.mapping(mv, f"measure '{mname}'", ("column", "clamp"), required=("agg",))
        if mm is None or mm.get("agg") is None:
            continue
        agg = chk.enum(mm.get("agg"), f"aggregate for measure '{mname}'", AGGREGATES)
        if agg in ("sum", "avg"):
            if mm.get("column") is None or mm.get("clamp") is None:
                chk.error(
                    mm.loc,
                    f"measure '{mname}' ({agg}) needs `column` and `clamp`",
                    expected="`column: <name>, clamp: [low, high]`",
                )
            else:
                clamp = chk.seq(mm.get("clamp"), "clamp")
                if clamp is not None:
                    vals = [chk.number(v, "a clamp bound") for v in clamp.items]
                    if len(vals) != 2 or None in vals or not vals[0] < vals[1]:
                        chk.error(
                            clamp.loc,
                            "clamp must be [low, high] with low < high",
                            expected="two numbers such as [0, 500]",
                        )
    if src is None or tgt is None or eps is None or delta is None:
        return None
    return ReleaseSpec(rid, knode.loc, tgt, m.get("target").loc, eps, delta)
