"""One column entry: a transform name, or a mapping with `transform:` (or `rule:`) and
parameters, checked against the transform's declared parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlanon.plan.model import DIRECT, OTHER, QUASI, SENSITIVE
from sqlanon.plan.types import ALL_TYPES
from sqlanon.policy.check import Checker
from sqlanon.policy.diagnostics import did_you_mean, one_of
from sqlanon.policy.fragments import Loaded, Rule
from sqlanon.policy.model import PSEUDONYM, ColumnSpec, KeyUses
from sqlanon.policy.yamltree import YNode, YScalar, describe
from sqlanon.transforms import REGISTRY
from sqlanon.transforms.base import ColumnContext

COLUMN_KEYS = ("transform", "rule", "type", "column", "class", "description")
CLASS_NAMES = {
    "direct_identifier": DIRECT,
    "quasi_identifier": QUASI,
    "sensitive": SENSITIVE,
    "other": OTHER,
}


def read_column(
    chk: Checker,
    name: str,
    knode: YScalar,
    node: YNode,
    base: Path,
    loaded: Loaded,
    key_uses: KeyUses,
) -> ColumnSpec | None:
    what = f"column '{name}'"
    # entries: key -> (key location, value node, directory relative paths resolve from)
    entries: dict[str, tuple[YNode, YNode, Path]] = {}
    rule_name = None
    if isinstance(node, YScalar):
        if not isinstance(node.value, str) or node.value not in REGISTRY:
            if isinstance(node.value, str) and node.value in loaded.rules:
                rule_name = node.value
                merge_rule(chk, loaded.rules[node.value], entries)
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
            merge_rule(chk, rule, entries)
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
        from sqlanon.policy.tables import TABLE_KEYS

        hint = None
        if name in TABLE_KEYS and name not in ("description",):
            hint = f"`{name}` is a table-level key: indent it one level less, beside `columns:`"
        chk.error(
            knode.loc,
            f"{what} has no transform",
            expected="`transform: <name>` or a shorthand such as `keep`",
            hint=hint,
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
    key_name = normalized.get("key") if transform.uses_key else None
    if key_name is not None:
        where = param_nodes["key"].loc if "key" in param_nodes else knode.loc
        key_uses.use(key_name, PSEUDONYM, where)
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
        type_declared=type_declared,
        key=key_name,
        lookup=lookup,
        description=description,
        rule=rule_name,
    )


def merge_rule(chk: Checker, rule: Rule, entries: dict[str, tuple[YNode, YNode, Path]]) -> None:
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
