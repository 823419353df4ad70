"""Reading policy files into validated PolicySpecs, collecting every error with its location.

Fragments (files with `fragment:` instead of `name:`) hold named column `rules`; a policy
`include`s fragments and a column says `{rule: email}` to use one, overriding parameters
where it needs to. See docs/policy-format.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Location, PolicyError, did_you_mean, display_path, one_of
from ..plan import DIRECT, OTHER, QUASI, SENSITIVE, InputFile
from ..transforms import REGISTRY
from ..transforms.base import ColumnContext, Name
from ..types import ALL_TYPES
from .check import Checker, relation_name
from .model import (
    FORMAT_VERSION,
    ColumnSpec,
    KAnonymitySpec,
    PolicySpec,
    ReleaseSpec,
    RetentionSpec,
    SampleSpec,
    SensitiveSpec,
    TableSpec,
)
from .yamltree import YMap, YNode, YScalar, YSeq, describe, load_tree

POLICY_KEYS = (
    "sqlanon",
    "name",
    "description",
    "include",
    "keys",
    "defaults",
    "tables",
    "releases",
    "budget",
)
FRAGMENT_KEYS = ("sqlanon", "fragment", "description", "include", "rules")
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
)
COLUMN_KEYS = ("transform", "rule", "type", "column", "class", "description")
CLASS_NAMES = {
    "direct_identifier": DIRECT,
    "quasi_identifier": QUASI,
    "sensitive": SENSITIVE,
    "other": OTHER,
}
RESERVED_PREFIX = "_sqlanon"
MAX_INCLUDE_DEPTH = 16


@dataclass
class Rule:
    name: str
    node: YNode
    base_dir: Path
    loc: Location


@dataclass
class Loaded:
    """Everything read while loading one policy, shared with its includes."""

    chk: Checker = field(default_factory=Checker)
    rules: dict[str, Rule] = field(default_factory=dict)
    inputs: list[InputFile] = field(default_factory=list)


def _read(
    path: Path, display: str, chk: Checker, data: bytes | None = None
) -> tuple[YNode, str] | None:
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            chk.error(None, f"policy file '{display}' not found", expected="an existing YAML file")
            return None
        except OSError as exc:
            chk.error(
                None,
                f"policy file '{display}' cannot be read: {exc.strerror}",
                expected="a readable YAML file",
            )
            return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        chk.error(
            Location(display, 1, 1),
            f"policy file is not UTF-8 ({exc.reason} at byte {exc.start})",
            expected="a UTF-8 text file",
        )
        return None
    try:
        tree = load_tree(text, display)
    except PolicyError as exc:
        chk.errors.extend(exc.diagnostics)
        return None
    return tree, hashlib.sha256(data).hexdigest()


def _format_version(chk: Checker, root: YMap) -> None:
    node = root.get("sqlanon")
    if node is None:
        return
    if not (
        isinstance(node, YScalar)
        and node.value == FORMAT_VERSION
        and not isinstance(node.value, bool)
    ):
        chk.error(
            node.loc,
            f"unsupported policy format version {describe(node)}",
            expected=f"`sqlanon: {FORMAT_VERSION}`",
            hint="this version of sqlanon reads format 1",
        )


# -- includes and rules ------------------------------------------------------------------------


def _includes(
    chk: Checker, root: YMap, base: Path, loaded: Loaded, stack: tuple[Path, ...]
) -> None:
    node = root.get("include")
    if node is None:
        return
    for rel, loc in chk.string_list(node, "include", allow_single=True):
        path = (base / rel).resolve()
        display = display_path(path)
        if path in stack:
            chk.error(
                loc,
                f"include cycle: '{rel}' includes itself",
                expected="fragments that do not include each other in a loop",
            )
            continue
        if len(stack) > MAX_INCLUDE_DEPTH:
            chk.error(loc, "includes are nested too deeply", expected=f"≤ {MAX_INCLUDE_DEPTH}")
            continue
        if not path.exists():
            chk.error(
                loc,
                f"included file '{rel}' not found",
                expected="a path relative to this file",
                hint=f"looked for {display}",
            )
            continue
        _load_fragment(path, display, loaded, (*stack, path), loc)


def _load_fragment(
    path: Path, display: str, loaded: Loaded, stack: tuple[Path, ...], include_loc: Location | None
) -> None:
    chk = loaded.chk
    read = _read(path, display, chk)
    if read is None:
        return
    tree, sha = read
    loaded.inputs.append(InputFile(display, sha, "fragment"))
    root = chk.mapping(tree, "a fragment", FRAGMENT_KEYS, required=("sqlanon", "fragment"))
    if root is None:
        return
    if root.get("fragment") is None and include_loc is not None:
        chk.error(include_loc, f"'{display}' is not a fragment", expected="a file with `fragment:`")
        return
    _format_version(chk, root)
    _includes(chk, root, path.parent, loaded, stack)
    rules = root.get("rules")
    if rules is None:
        return
    m = chk.mapping(rules, "rules", open_keys=True)
    if m is None:
        return
    for name, (knode, value) in m.entries.items():
        if name in loaded.rules:
            first = loaded.rules[name].loc
            chk.error(
                knode.loc,
                f"rule '{name}' is defined twice",
                expected="rule names unique across included fragments",
                hint=f"the other is at {first}",
            )
            continue
        loaded.rules[name] = Rule(name, value, path.parent, knode.loc)


# -- columns -----------------------------------------------------------------------------------


def _column(
    chk: Checker,
    name: str,
    knode: YScalar,
    node: YNode,
    base: Path,
    loaded: Loaded,
    key_versions: dict[str, int],
) -> ColumnSpec | None:
    what = f"column '{name}'"
    # entries: key -> (key location, value node, directory relative paths resolve from)
    entries: dict[str, tuple[YNode, YNode, Path]] = {}
    rule_name = None
    if isinstance(node, YScalar):
        if not isinstance(node.value, str) or node.value not in REGISTRY:
            if isinstance(node.value, str) and node.value in loaded.rules:
                rule_name = node.value
                _merge_rule(chk, loaded.rules[node.value], entries)
            else:
                choices = list(REGISTRY)
                chk.error(
                    node.loc,
                    f"unknown transform {describe(node)} for {what}",
                    expected=one_of(choices),
                    hint=did_you_mean(node.text, choices + list(loaded.rules)),
                )
                return None
        else:
            entries["transform"] = (node, node, base)
    else:
        m = chk.mapping(node, what, open_keys=True)
        if m is None:
            return None
        rule_node = m.get("rule")
        if rule_node is not None:
            rname = chk.string(rule_node, f"the rule of {what}")
            if rname is None:
                return None
            rule = loaded.rules.get(rname)
            if rule is None:
                chk.error(
                    rule_node.loc,
                    f"unknown rule '{rname}'",
                    expected=one_of(loaded.rules)
                    if loaded.rules
                    else "a rule from an included fragment (this policy includes none)",
                    hint=did_you_mean(rname, loaded.rules),
                )
                return None
            rule_name = rname
            _merge_rule(chk, rule, entries)
            if "transform" in m.entries:
                chk.error(
                    m.key_loc("transform"),
                    f"{what} uses rule '{rname}', which fixes the transform",
                    expected="only parameter overrides next to `rule:`",
                )
                return None
        for key, (kn, value) in m.entries.items():
            if key != "rule":
                entries[key] = (kn, value, base)
    if "transform" not in entries:
        chk.error(
            knode.loc,
            f"{what} has no transform",
            expected="`transform: <name>` or a shorthand such as `keep`",
        )
        return None
    _, tnode, _ = entries.pop("transform")
    tname = chk.enum(tnode, f"transform for {what}", REGISTRY)
    if tname is None:
        return None
    transform = REGISTRY[tname]

    type_declared = "type" in entries
    input_type = transform.default_type
    if type_declared:
        declared = chk.enum(entries["type"][1], f"type for {what}", ALL_TYPES)
        if declared is None:
            return None
        if declared not in transform.accepts:
            chk.error(
                entries["type"][1].loc,
                f"transform '{tname}' does not accept type '{declared}'",
                expected=one_of(transform.accepts),
            )
            return None
        input_type = declared
    source = name
    if "column" in entries:
        s = chk.string(entries["column"][1], f"the source column of {what}")
        if s is None:
            return None
        source = s
    declared_class = None
    if "class" in entries:
        c = chk.enum(entries["class"][1], f"privacy class for {what}", CLASS_NAMES)
        if c is None:
            return None
        declared_class = CLASS_NAMES[c]
    description = None
    if "description" in entries:
        description = chk.string(
            entries["description"][1], f"the description of {what}", non_empty=False
        )

    params: dict[str, Any] = {}
    param_nodes: dict[str, YNode] = {}
    base_dirs: dict[str, Path] = {}
    known = {p.name: p for p in transform.params}
    ok = True
    for key, (knode_, value, pdir) in entries.items():
        if key in COLUMN_KEYS:
            continue
        spec = known.get(key)
        if spec is None:
            allowed = list(known) + [k for k in COLUMN_KEYS if k != "rule"]
            chk.error(
                knode_.loc,
                f"unknown parameter '{key}' for transform '{tname}' in {what}",
                expected=one_of(known) if known else f"no parameters for '{tname}'",
                hint=did_you_mean(key, allowed),
            )
            ok = False
            continue
        v = spec.kind.read(chk, value, f"'{key}' of {what}")
        if v is None:
            ok = False
            continue
        params[key] = v
        param_nodes[key] = value
        base_dirs[key] = pdir
    for spec in transform.params:
        if spec.name not in params:
            if spec.required:
                chk.error(
                    knode.loc,
                    f"{what}: transform '{tname}' needs '{spec.name}'",
                    expected=f"`{spec.name}:` ({spec.kind.doc})",
                )
                ok = False
            elif spec.default is not None:
                params[spec.name] = spec.default
    if not ok:
        return None
    ctx = ColumnContext(chk, name, knode, param_nodes, input_type, type_declared, base_dirs)
    normalized = transform.normalize(params, ctx)
    if normalized is None:
        return None
    lookup = transform.lookup(normalized, ctx)
    loaded.inputs.extend(ctx.inputs)
    key = normalized.get("key") if transform.uses_key else None
    if key is not None:
        key_versions.setdefault(key, 0)  # marks the key as used; versions fill in later
    shown = tuple((p.name, normalized[p.name]) for p in transform.params if p.name in normalized)
    return ColumnSpec(
        name=name,
        key_node=knode,
        source=source,
        transform=tname,
        params=shown,
        input_type=input_type,
        output_type=transform.output_type(input_type, normalized),
        declared_class=declared_class,
        key=key,
        lookup=lookup,
        description=description,
        rule=rule_name,
    )


def _merge_rule(chk: Checker, rule: Rule, entries: dict[str, tuple[YNode, YNode, Path]]) -> None:
    node = rule.node
    if isinstance(node, YScalar):
        entries["transform"] = (node, node, rule.base_dir)
        return
    m = chk.mapping(node, f"rule '{rule.name}'", open_keys=True)
    if m is None:
        return
    if "rule" in m.entries:
        chk.error(
            m.key_loc("rule"),
            f"rule '{rule.name}' refers to another rule",
            expected="a rule written out with `transform:`",
        )
        return
    for key, (kn, value) in m.entries.items():
        entries[key] = (kn, value, rule.base_dir)


# -- tables ------------------------------------------------------------------------------------


def _table(
    chk: Checker,
    tid: str,
    knode: YScalar,
    node: YNode,
    base: Path,
    loaded: Loaded,
    key_versions: dict[str, int],
) -> TableSpec | None:
    what = f"table '{tid}'"
    m = chk.mapping(
        node, what, TABLE_KEYS, required=("source", "target", "columns"), parent_loc=knode.loc
    )
    if m is None:
        return None
    source = (
        relation_name(chk, m.get("source"), f"the source of {what}") if m.get("source") else None
    )
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
            col = _column(chk, cname, ckey, cnode, base, loaded, key_versions)
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
            col = chk.string(r.get("column"), "the retention column")
            days = chk.integer(r.get("max_age_days"), "max_age_days", 1, 1_000_000)
            if col is not None and days is not None:
                retention = RetentionSpec(col, days, r.loc)

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
                key_versions.setdefault(key, 0)

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
                    k.get("quasi_identifiers").loc,
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
                good &= _check_member(chk, q, qloc, "quasi-identifier", what, by_name, emitted)
            if good and kval is not None:
                kanon = KAnonymitySpec(tuple(q for q, _ in qis), kval, action, k.loc)

    ldiv = _sensitive(chk, m, "l_diversity", "l", what, by_name, emitted, kanon)
    tclose = _sensitive(chk, m, "t_closeness", "t", what, by_name, emitted, kanon)
    if source is None or target is None or cm is None:
        return None
    return TableSpec(
        tid,
        knode.loc,
        source,
        target,
        m.get("target").loc,
        grants,
        tuple(columns),
        retention,
        sample,
        kanon,
        ldiv,
        tclose,
        description,
    )


def _check_member(
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


def _sensitive(
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
    if param == "l":
        level = chk.integer(s.get("l"), "l", 2, 1_000_000)
    else:
        level = chk.number(s.get("t"), "t", 0, 1, exclusive_minimum=True)
    if col is None or level is None:
        return None
    if not _check_member(
        chk, col, s.get("sensitive").loc, "sensitive column", what, listed, emitted
    ):
        return None
    if kanon and col in kanon.quasi_identifiers:
        chk.error(
            s.get("sensitive").loc,
            f"'{col}' is both a quasi-identifier and sensitive",
            expected="a sensitive column that is not a quasi-identifier",
        )
        return None
    return SensitiveSpec(col, level, s.loc)


# -- releases (validated now, compiled later) --------------------------------------------------

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


def _release(chk: Checker, rid: str, knode: YScalar, node: YNode) -> ReleaseSpec | None:
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


# -- a whole policy ----------------------------------------------------------------------------


def load_policy(
    path: Path | str, display: str | None = None, text: str | None = None
) -> PolicySpec:
    """Load and validate one policy file (or `text` standing for it: relative paths in it
    resolve from `path`'s folder), or raise PolicyError with every problem found."""
    path = Path(path)
    display = display or display_path(path)
    loaded = Loaded()
    chk = loaded.chk
    read = _read(path, display, chk, None if text is None else text.encode("utf-8"))
    if read is None:
        raise PolicyError(chk.errors)
    tree, sha = read
    root = chk.mapping(tree, "the policy", POLICY_KEYS, required=("sqlanon", "name", "tables"))
    if root is None:
        raise PolicyError(chk.errors)
    if root.get("fragment") is not None:
        raise PolicyError(
            [
                Diagnostic(
                    root.loc,
                    f"'{display}' is a fragment, not a policy",
                    hint="include it from a policy with `include:`",
                )
            ]
        )
    _format_version(chk, root)
    name = Name().read(chk, root.get("name"), "the policy name") if root.get("name") else None
    _includes(chk, root, path.parent, loaded, (path.resolve(),))

    key_table = None
    declared_versions: dict[str, tuple[int, Location]] = {}
    keys_node = root.get("keys")
    if keys_node is not None:
        k = chk.mapping(keys_node, "keys", ("versions",), required=("table",))
        if k is not None and k.get("table") is not None:
            key_table = relation_name(chk, k.get("table"), "the key table")
        if k is not None and k.get("versions") is not None:
            vm = chk.mapping(k.get("versions"), "key versions", open_keys=True)
            for kname, (kk, kv) in vm.entries.items() if vm else []:
                v = chk.integer(kv, f"the version of key '{kname}'", 1, 1_000_000)
                if v is not None:
                    declared_versions[kname] = (v, kk.loc)

    unlisted = "drop"
    defaults = root.get("defaults")
    if defaults is not None:
        d = chk.mapping(defaults, "defaults", ("unlisted_columns",))
        if d is not None and d.get("unlisted_columns") is not None:
            unlisted = (
                chk.enum(d.get("unlisted_columns"), "value for unlisted_columns", ("drop", "error"))
                or "drop"
            )

    used_keys: dict[str, int] = {}
    tables: list[TableSpec] = []
    tnode = root.get("tables")
    tm = chk.mapping(tnode, "tables", open_keys=True) if tnode is not None else None
    for tid, (tk, tv) in tm.entries.items() if tm else []:
        t = _table(chk, tid, tk, tv, path.parent, loaded, used_keys)
        if t is not None:
            tables.append(t)

    releases: list[ReleaseSpec] = []
    rnode = root.get("releases")
    rm = chk.mapping(rnode, "releases", open_keys=True) if rnode is not None else None
    for rid, (rk, rv) in rm.entries.items() if rm else []:
        r = _release(chk, rid, rk, rv)
        if r is not None:
            releases.append(r)
    budget = None
    if root.get("budget") is not None:
        b = chk.mapping(root.get("budget"), "budget", ("delta",), required=("epsilon",))
        if b is not None and b.get("epsilon") is not None:
            eps = chk.number(
                b.get("epsilon"), "the budget's epsilon", 0, 1000, exclusive_minimum=True
            )
            delta = (
                chk.number(b.get("delta"), "the budget's delta", 0, 1)
                if b.get("delta") is not None
                else 0
            )
            if eps is not None and delta is not None:
                budget = (eps, delta)

    if used_keys and key_table is None:
        where = keys_node.loc if keys_node is not None else root.loc
        chk.error(
            where,
            f"the policy uses keys ({', '.join(sorted(used_keys))}) but names no key relation",
            expected="`keys: {table: <schema>.<table>}`",
            hint="run `sqlanon keys ddl` to create it",
        )
    for kname, (_, kloc) in declared_versions.items():
        if kname not in used_keys:
            chk.error(
                kloc,
                f"a version is set for key '{kname}', which no column uses",
                expected=one_of(used_keys) if used_keys else "a key used by a column",
                hint=did_you_mean(kname, used_keys),
            )
    if chk.errors:
        raise PolicyError(chk.errors)
    assert name is not None
    versions = {k: declared_versions.get(k, (1, None))[0] for k in sorted(used_keys)}
    inputs = (InputFile(display, sha, "policy"), *_unique(loaded.inputs))
    return PolicySpec(
        display,
        sha,
        name,
        root.loc,
        key_table,
        versions,
        unlisted,
        tuple(tables),
        tuple(releases),
        budget,
        inputs,
    )


def _unique(inputs: list[InputFile]) -> tuple[InputFile, ...]:
    return tuple(sorted(set(inputs), key=lambda i: (i.role, i.path)))


def load_fragment(path: Path | str, display: str | None = None) -> None:
    """Validate a fragment on its own (for `sqlanon validate policies/`)."""
    path = Path(path)
    loaded = Loaded()
    _load_fragment(path, display or display_path(path), loaded, (path.resolve(),), None)
    for rule in loaded.rules.values():
        _column(
            loaded.chk,
            rule.name,
            YScalar(rule.name, rule.name, rule.loc, False),
            rule.node,
            rule.base_dir,
            Loaded(loaded.chk, {}, []),
            {},
        )
    if loaded.chk.errors:
        raise PolicyError(loaded.chk.errors)


def is_fragment(path: Path) -> bool:
    """Cheap sniff: a fragment declares `fragment:` at the top level."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("fragment:") for line in head.splitlines())


def expand(paths: list[str]) -> list[tuple[Path, str]]:
    """Files named, with folders expanded to their *.yml / *.yaml files in name order."""
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for child in sorted(list(p.glob("*.yml")) + list(p.glob("*.yaml"))):
                out.append((child, display_path(child)))
        else:
            out.append((p, display_path(p)))
    return out


def load_policies(paths: list[str], check_fragments: bool = False) -> list[PolicySpec]:
    """Load every policy named (folders expanded), all errors at once, and check that
    policies compiled together do not collide. Fragments found are skipped, or validated on
    their own with `check_fragments`."""
    policies: list[PolicySpec] = []
    errors: list[Diagnostic] = []
    fragments = 0
    for path, display in expand(paths):
        try:
            if not is_fragment(path):
                policies.append(load_policy(path, display))
            elif check_fragments:
                fragments += 1
                load_fragment(path, display)
        except PolicyError as exc:
            errors.extend(exc.diagnostics)
    if not policies and not errors and not fragments:
        errors.append(
            Diagnostic(
                None,
                f"no policy files found in {', '.join(paths)}",
                expected="a .yml policy file or a folder of them",
            )
        )
    errors.extend(_collisions(policies))
    if errors:
        raise PolicyError(errors)
    return policies


def _collisions(policies: list[PolicySpec]) -> list[Diagnostic]:
    errors: list[Diagnostic] = []
    names: dict[str, PolicySpec] = {}
    targets: dict[tuple[str, ...], Location] = {}
    for p in policies:
        if p.name in names:
            errors.append(
                Diagnostic(
                    p.loc,
                    f"policy name '{p.name}' is also used by {names[p.name].file}",
                    expected="unique policy names",
                )
            )
        names[p.name] = p
        objects = [(t.target, t.target_loc) for t in p.tables]
        objects += [(r.target, r.target_loc) for r in p.releases]
        for target, loc in objects:
            folded = tuple(part.lower() for part in target)
            if folded in targets:
                errors.append(
                    Diagnostic(
                        loc,
                        f"target '{'.'.join(target)}' is written twice",
                        expected="each view or table written by one entry",
                        hint=f"the other is at {targets[folded]}",
                    )
                )
            else:
                targets[folded] = loc
    return errors
