"""Declared utility checks: what an analyst needs to stay true after anonymization, checked by
`sqlanon utility` (a CI gate). A table or release lists them under `utility:`, one mapping
per check: `{check: correlation, columns: [age, income], max_delta: 0.05}`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlanon.policy.check import Checker
from sqlanon.policy.diagnostics import Location, did_you_mean, one_of
from sqlanon.policy.model import UtilityCheckSpec
from sqlanon.policy.yamltree import YMap, YNode

# check name → (parameters it takes besides `check`, the limit's key, what it bounds)
TABLE_CHECKS = {
    "suppressed": ((), "max", "the share of rows k-anonymity suppressed"),
    "mean_shift": (("column",), "max", "the relative shift of a column's mean"),
    "distance": (("column",), "max", "the distribution distance (KS or total variation)"),
    "correlation": (("columns",), "max_delta", "the change of a correlation"),
}
RELEASE_CHECKS = {
    "median_relative_error": (("measure",), "max", "the median relative error of a measure"),
}
SYNTHETIC_CHECKS = {
    "distance": (("column",), "max", "the total-variation distance of a column's shares"),
    "pair_distance": (("columns",), "max", "the total-variation distance of two columns' shares"),
}


def read_checks(
    chk: Checker,
    node: YNode | None,
    what: str,
    kinds: Mapping[str, tuple[tuple[str, ...], str, str]],
    columns: Iterable[str],
) -> tuple[UtilityCheckSpec, ...]:
    """`columns` are the names a check may refer to (a view's columns, a release's measures)."""
    if node is None:
        return ()
    seq = chk.seq(node, f"the utility checks of {what}")
    if seq is None:
        return ()
    names = list(columns)
    out = []
    for item in seq.items:
        m = chk.mapping(item, f"a utility check of {what}", required=("check",), open_keys=True)
        if m is None or m.get("check") is None:
            continue
        kind = chk.enum(m.get("check"), "utility check", kinds)
        if kind is None:
            continue
        params, limit_key, _ = kinds[kind]
        allowed = ("check", *params, limit_key)
        if chk.mapping(item, f"the {kind} check", allowed, required=allowed) is None:
            continue
        if any(m.get(key) is None for key in allowed):
            continue  # reported as missing
        refs = _references(chk, m, params, names, what)
        limit = chk.number(m.get(limit_key), limit_key, 0, None)
        if refs is not None and limit is not None:
            out.append(UtilityCheckSpec(kind, refs, limit, m.loc))
    return tuple(out)


def _references(
    chk: Checker, m: YMap, params: tuple[str, ...], names: list[str], what: str
) -> tuple[str, ...] | None:
    refs: list[tuple[str, Location]] = []
    for p in params:
        if p == "columns":
            node = m.get(p)
            items = chk.string_list(node, "columns")
            if len(items) != 2:
                where = node.loc if node is not None else m.loc
                chk.error(where, "the check names two columns", expected="[a, b]")
                return None
            refs += items
        else:
            node = m.get(p)
            value = chk.string(node, p)
            if value is None or node is None:
                return None
            refs.append((value, node.loc))
    good = True
    for name, loc in refs:
        if name not in names:
            chk.error(
                loc,
                f"'{name}' is not a {'measure' if 'measure' in params else 'column'} of {what}",
                expected=one_of(names) if names else "a name the policy defines",
                hint=did_you_mean(name, names),
            )
            good = False
    return tuple(n for n, _ in refs) if good else None
