"""Differentially private synthetic tables (docs/synthetic.md): the attributes (written like a
release's group_by columns), each attribute's public domain, the model's structure (pairs of
attributes forming a forest, or `auto`: a tree chosen privately per refresh), the number of
rows and the privacy unit."""

from __future__ import annotations

from pathlib import Path

from sqlanon.plan import canonical
from sqlanon.plan.model import SourceQuery
from sqlanon.plan.types import ALL_TYPES
from sqlanon.policy.check import Checker, has_control, relation_name
from sqlanon.policy.diagnostics import did_you_mean, one_of
from sqlanon.policy.fragments import Loaded
from sqlanon.policy.model import NOISE, ColumnSpec, KeyUses, SyntheticSpec
from sqlanon.policy.releases import MAX_EPSILON, read_groupable_columns
from sqlanon.policy.sources import check_reads, read_source
from sqlanon.policy.utility import SYNTHETIC_CHECKS, read_checks
from sqlanon.policy.yamltree import YMap, YNode, YScalar, YSeq
from sqlanon.transforms import REGISTRY
from sqlanon.transforms.base import Name

SYNTHETIC_KEYS = (
    "source",
    "target",
    "description",
    "privacy_unit",
    "unit_type",
    "rows_are_units",
    "max_rows_per_unit",
    "epsilon",
    "attributes",
    "domains",
    "structure",
    "rows",
    "grants",
    "key",
    "utility",
)
MAX_DOMAIN = 1000  # values per attribute: a pair's marginal has at most 10^6 cells
MAX_ROWS = 100_000_000
# `structure: auto` measures every pair (its true counts score the candidates): the cells of
# all pairs together, and the attributes (the SQL chooses the tree in one step per attribute)
MAX_AUTO_CELLS = 1_000_000
MAX_AUTO_ATTRIBUTES = 24


def read_synthetic(
    chk: Checker,
    sid: str,
    knode: YScalar,
    node: YNode,
    base: Path,
    loaded: Loaded,
    key_uses: KeyUses,
) -> SyntheticSpec | None:
    what = f"synthetic table '{sid}'"
    m = chk.mapping(
        node,
        what,
        SYNTHETIC_KEYS,
        required=("source", "target", "epsilon", "attributes", "structure", "rows"),
        parent_loc=knode.loc,
    )
    if m is None:
        return None
    ok = True
    src = read_source(chk, m.get("source"), f"the source of {what}") if m.get("source") else None
    tgt = relation_name(chk, m.get("target"), f"the target of {what}") if m.get("target") else None
    unit = _unit(chk, m, what)
    unit_type = "text"
    if m.get("unit_type") is not None:
        unit_type = chk.enum(m.get("unit_type"), "type for the privacy unit", ALL_TYPES) or "text"
    per_unit = 1
    if m.get("max_rows_per_unit") is not None:
        per_unit = chk.integer(m.get("max_rows_per_unit"), "max_rows_per_unit", 1, 1000) or 0
        ok = ok and per_unit > 0
    eps = (
        chk.number(m.get("epsilon"), "epsilon", 0, MAX_EPSILON, exclusive_minimum=True)
        if m.get("epsilon") is not None
        else None
    )
    key = Name().read(chk, m.get("key"), "the noise key") if m.get("key") else "noise"
    grants: tuple[str, ...] = ()
    if m.get("grants") is not None:
        grants = tuple(g for g, _ in chk.string_list(m.get("grants"), f"the grants of {what}"))
    attributes = read_groupable_columns(chk, m.get("attributes"), what, base, loaded)
    if attributes is not None and not attributes:
        chk.error(m.loc, f"{what} has no attributes", expected="at least one attribute")
        attributes = None
    domains = _domains(chk, m.get("domains"), attributes or [], what)
    structure = _structure(chk, m.get("structure"), attributes or [], what)
    auto = structure == "auto"
    pairs = structure if isinstance(structure, tuple) else ()
    if auto and domains is not None and attributes is not None:
        ok = _auto(chk, m.get("structure"), domains, what) and ok
    rows = _rows(chk, m.get("rows"))
    names = [a.name for a in attributes or ()]
    utility = read_checks(chk, m.get("utility"), what, SYNTHETIC_CHECKS, names)
    if isinstance(src, SourceQuery) and attributes:
        reads = [(unit[0], m.value_loc("privacy_unit"))] if unit and unit[0] else []
        reads += [(a.source, a.loc) for a in attributes]
        check_reads(chk, src, reads, what)
    if (
        not ok
        or src is None
        or tgt is None
        or unit is None
        or eps is None
        or key is None
        or attributes is None
        or domains is None
        or structure is None
        or rows is False
    ):
        return None
    if key:
        key_uses.use(key, NOISE, m.value_loc("key") if m.get("key") else knode.loc)
    return SyntheticSpec(
        id=sid,
        loc=knode.loc,
        source=src,
        target=tgt,
        target_loc=m.value_loc("target"),
        privacy_unit=unit[0],
        unit_type=unit_type,
        max_rows_per_unit=per_unit,
        epsilon=eps,
        attributes=tuple(attributes),
        domains=domains,
        structure=pairs,
        auto_structure=auto,
        rows=rows,
        utility=utility,
        grants=grants,
        key=key,
        description=chk.string(m.get("description"), "description", non_empty=False)
        if m.get("description")
        else None,
    )


def _unit(chk: Checker, m: YMap, what: str) -> tuple[str | None] | None:
    """(the privacy unit's column,) or (None,) when the policy declares that every source row
    is one unit; one of the two must be written — sqlanon cannot know it."""
    column, rows = m.get("privacy_unit"), m.get("rows_are_units")
    if (column is None) == (rows is None):
        chk.error(
            m.loc,
            f"{what} needs either `privacy_unit: <column>` or `rows_are_units: true`",
            expected="one of the two: who one row belongs to decides what the noise hides",
            hint="`rows_are_units: true` only when no person has two rows in the source",
        )
        return None
    if column is not None:
        name = chk.string(column, "privacy_unit")
        return None if name is None else (name,)
    flag = chk.boolean(rows, "rows_are_units")
    if flag is not True:
        if flag is False:
            chk.error(
                m.value_loc("rows_are_units"),
                "`rows_are_units: false` needs the unit's column instead",
                expected="`privacy_unit: <column>`",
            )
        return None
    if m.get("max_rows_per_unit") is not None:
        chk.error(
            m.key_loc("max_rows_per_unit"),
            "with `rows_are_units: true` each unit has one row",
            expected="no `max_rows_per_unit`, or a `privacy_unit` column",
        )
        return None
    return (None,)


def _domains(
    chk: Checker, node: YNode | None, attributes: list[ColumnSpec], what: str
) -> tuple[tuple[str, ...], ...] | None:
    """Each attribute's public domain as canonical texts: listed under `domains`, or fixed by
    the transform's parameters (a bucket's or age's min, max and width; a hierarchy). Never
    read from the data: the values present would reveal who is in it."""
    listed: dict[str, YNode] = {}
    ok = True
    if node is not None:
        dm = chk.mapping(node, f"the domains of {what}", open_keys=True)
        if dm is None:
            return None
        names = [a.name for a in attributes]
        for name, (dk, dv) in dm.entries.items():
            if name not in names:
                chk.error(
                    dk.loc,
                    f"a domain is listed for '{name}', which is not an attribute of {what}",
                    expected=one_of(names) if names else "an attribute",
                    hint=did_you_mean(name, names),
                )
                ok = False
            listed[name] = dv
    out: list[tuple[str, ...]] = []
    for a in attributes:
        type_ = a.output_type or "text"
        derived = REGISTRY[a.transform].domain(dict(a.params), type_, a.lookup)
        vnode = listed.get(a.name)
        if vnode is None:
            if derived is None:
                chk.error(
                    a.loc,
                    f"attribute '{a.name}' of {what} has no public domain: its transform "
                    f"'{a.transform}' does not fix one",
                    expected=f"`domains: {{{a.name}: [...]}}`: every value it may take, "
                    "from a codebook or a standard, not from the data",
                    hint="a bucket or age with `min`, `max` and `width` (or `edges`), and "
                    "generalize (its hierarchy), fix their own domains",
                )
                ok = False
                continue
            if len(derived) > MAX_DOMAIN:
                chk.error(
                    a.loc,
                    f"attribute '{a.name}' of {what} has {len(derived)} values: its "
                    f"transform '{a.transform}' fixes more than a synthetic table can draw",
                    expected=f"1 to {MAX_DOMAIN} values",
                    hint="a coarser level or wider buckets",
                )
                ok = False
                continue
            out.append(derived)
            continue
        seq = chk.seq(vnode, f"the domain of '{a.name}'")
        if seq is None:
            ok = False
            continue
        values: list[str] = []
        for v in seq.items:
            s = chk.scalar(v, "a domain value", "a value")
            if s is None:
                ok = False
                continue
            if has_control(s.text):
                chk.error(v.loc, "a domain value must not contain control characters")
                ok = False
                continue
            try:
                text = canonical.of_text(s.text, type_)
            except canonical.NotOfType as exc:
                chk.error(
                    v.loc,
                    f"domain value {s.text!r} is not a {type_} value of attribute '{a.name}'",
                    expected=str(exc),
                )
                ok = False
                continue
            if text in values:
                chk.error(v.loc, f"domain value {s.text!r} of '{a.name}' is listed twice")
                ok = False
                continue
            values.append(text)
        if not values or len(values) > MAX_DOMAIN:
            chk.error(
                seq.loc,
                f"the domain of '{a.name}' has {len(values)} values",
                expected=f"1 to {MAX_DOMAIN} values",
            )
            ok = False
            continue
        out.append(tuple(values))
    return tuple(out) if ok else None


def _auto(
    chk: Checker, node: YNode | None, domains: tuple[tuple[str, ...], ...], what: str
) -> bool:
    """`structure: auto` measures every pair's true counts to score it: bounded in size."""
    assert node is not None
    if len(domains) < 2:
        chk.error(node.loc, f"`structure: auto` needs two attributes or more; {what} has one")
        return False
    if len(domains) > MAX_AUTO_ATTRIBUTES:
        chk.error(
            node.loc,
            f"`structure: auto` chooses among the pairs of at most {MAX_AUTO_ATTRIBUTES} "
            f"attributes; {what} has {len(domains)}",
            expected="fewer attributes, or a declared list of pairs",
        )
        return False
    sizes = [len(v) for v in domains]
    cells = sum(a * b for i, a in enumerate(sizes) for b in sizes[i + 1 :])
    if cells > MAX_AUTO_CELLS:
        chk.error(
            node.loc,
            f"`structure: auto` scores every pair of attributes: {cells:,} cells in all, "
            f"more than {MAX_AUTO_CELLS:,}",
            expected="smaller domains, or a declared list of pairs",
        )
        return False
    return True


def _structure(
    chk: Checker, node: YNode | None, attributes: list[ColumnSpec], what: str
) -> tuple[tuple[str, str], ...] | str | None:
    """Pairs of attributes whose joint distribution the table keeps; together a forest (no
    cycle: each attribute is drawn given one other). Or "auto": a tree chosen per refresh."""
    if node is None:
        return None
    if isinstance(node, YScalar) and node.value == "auto":
        return "auto"
    seq = chk.seq(node, f"the structure of {what}")
    if seq is None:
        return None
    names = [a.name for a in attributes]
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    out: list[tuple[str, str]] = []
    for item in seq.items:
        pair = item.items if isinstance(item, YSeq) else []
        texts = [chk.scalar(v, "an attribute", "an attribute name") for v in pair]
        if len(pair) != 2 or any(t is None for t in texts):
            chk.error(item.loc, "a structure entry is a pair of attributes", expected="[a, b]")
            return None
        a, b = (t.text for t in texts if t is not None)
        for n, v in ((a, pair[0]), (b, pair[1])):
            if n not in parent:
                chk.error(
                    v.loc,
                    f"'{n}' is not an attribute of {what}",
                    expected=one_of(names) if names else "an attribute",
                    hint=did_you_mean(n, names),
                )
                return None
        if root(a) == root(b):
            chk.error(
                item.loc,
                f"the pair [{a}, {b}] closes a cycle (or repeats a pair): "
                "each attribute is drawn given at most one other",
                expected="pairs forming a tree or a forest",
            )
            return None
        parent[root(b)] = root(a)
        out.append((a, b))
    return tuple(out)


def _rows(chk: Checker, node: YNode | None) -> int | bool | None:
    """A number of rows, or `noisy` (the noisy count of the source rows used): None."""
    if isinstance(node, YScalar) and node.value == "noisy":
        return None
    if node is None:
        return False
    n = chk.integer(node, "rows", 1, MAX_ROWS)
    return False if n is None else n
