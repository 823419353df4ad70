"""Loading policies: every file named, validated with every error at once, and checked
not to collide with the policies it is compiled with. See docs/policy-format.md."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlanon.plan.model import InputFile
from sqlanon.policy.check import Checker, relation_name
from sqlanon.policy.columns import read_column
from sqlanon.policy.diagnostics import (
    Diagnostic,
    Location,
    PolicyError,
    did_you_mean,
    display_path,
    one_of,
)
from sqlanon.policy.files import check_format_version, expand, is_fragment, read_tree
from sqlanon.policy.fragments import Loaded, include_fragments, read_fragment
from sqlanon.policy.model import (
    KEY_PURPOSES,
    NOISE,
    KeyUses,
    PolicySpec,
    ReleaseSpec,
    SyntheticSpec,
    TableFacts,
    TableSpec,
)
from sqlanon.policy.releases import read_release
from sqlanon.policy.synthetic import read_synthetic
from sqlanon.policy.tables import read_table
from sqlanon.policy.yamltree import YNode, YScalar
from sqlanon.transforms.base import Name

POLICY_KEYS = (
    "sqlanon",
    "name",
    "description",
    "include",
    "keys",
    "defaults",
    "tables",
    "releases",
    "synthetic",
    "budget",
)


def load_policy(
    path: Path | str,
    display: str | None = None,
    text: str | None = None,
    other_uses: KeyUses | None = None,
    partial: bool = False,
) -> PolicySpec:
    """Load and validate one policy file (or `text` standing for it: relative paths in it
    resolve from `path`'s folder), or raise PolicyError with every problem found.
    `other_uses`: the key uses of tables left out of `text` (an incremental compile reads only
    the tables that changed, sqlanon/plan/incremental.py), checked with this text's.
    `partial`: `text` holds a share of the tables whose other uses are not known yet
    (sqlanon/plan/split.py): a key version no table here uses is not an error (yet)."""
    path = Path(path)
    display = display or display_path(path)
    loaded = Loaded()
    chk = loaded.chk
    read = read_tree(path, display, chk, None if text is None else text.encode("utf-8"))
    if read is None:
        raise PolicyError(chk.errors)
    tree, sha = read
    root = chk.mapping(tree, "the policy", POLICY_KEYS, required=("sqlanon", "name"))
    if root is None:
        raise PolicyError(chk.errors)
    if all(root.get(k) is None for k in ("tables", "releases", "synthetic")):
        chk.error(
            root.loc,
            "the policy has neither 'tables' nor 'releases'",
            expected="a `tables:` entry (views), a `releases:` entry (DP aggregates), "
            "a `synthetic:` entry (DP synthetic tables), or several of them",
        )
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
    check_format_version(chk, root)
    name_node = root.get("name")
    name = Name().read(chk, name_node, "the policy name") if name_node else None
    include_fragments(chk, root, path.parent, loaded, (path.resolve(),))

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

    used_keys = KeyUses()
    for kname, other in (other_uses or {}).items():
        used_keys[kname] = list(other)
    tables: list[TableSpec] = []
    facts: list[TableFacts] = []
    tnode = root.get("tables")
    tm = chk.mapping(tnode, "tables", open_keys=True) if tnode is not None else None
    for tid, (tk, tv) in tm.entries.items() if tm else []:
        uses, read_before = KeyUses(), len(loaded.inputs)
        t = read_table(chk, tid, tk, tv, path.parent, loaded, uses)
        for kname, found in uses.items():
            used_keys.setdefault(kname, []).extend(found)
        if t is not None:
            tables.append(t)
            pairs = tuple((k, purpose) for k, found in uses.items() for purpose, _ in found)
            facts.append(TableFacts(pairs, tuple(loaded.inputs[read_before:])))

    releases: list[ReleaseSpec] = []
    rnode = root.get("releases")
    rm = chk.mapping(rnode, "releases", open_keys=True) if rnode is not None else None
    for rid, (rk, rv) in rm.entries.items() if rm else []:
        r = read_release(chk, rid, rk, rv, path.parent, loaded, used_keys)
        if r is not None:
            releases.append(r)
    synthetic: list[SyntheticSpec] = []
    snode = root.get("synthetic")
    sm = chk.mapping(snode, "synthetic", open_keys=True) if snode is not None else None
    for sid, (sk, sv) in sm.entries.items() if sm else []:
        st = read_synthetic(chk, sid, sk, sv, path.parent, loaded, used_keys)
        if st is not None:
            synthetic.append(st)
    budget = ledger = None
    bnode = root.get("budget")
    if bnode is not None:
        b = chk.mapping(bnode, "budget", ("delta", "ledger"), required=("epsilon",))
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
            if b.get("ledger") is not None:
                ledger = relation_name(chk, b.get("ledger"), "the budget ledger")
    for node, mapping, what in ((rnode, rm, "releases"), (snode, sm, "synthetic tables")):
        if mapping is not None and mapping.entries and bnode is None and node is not None:
            chk.error(
                node.loc,
                f"{what} need a privacy budget",
                expected=f"`budget: {{epsilon: ..., delta: ...}}` (per refresh of the {what})",
            )
    if budget is not None and (releases or synthetic) and bnode is not None:
        _check_budget(chk, bnode, budget, [*releases, *synthetic])

    if used_keys and key_table is None:
        where = keys_node.loc if keys_node is not None else root.loc
        chk.error(
            where,
            f"the policy uses keys ({', '.join(sorted(used_keys))}) but names no key relation",
            expected="`keys: {table: <schema>.<table>}`",
            hint="run `sqlanon keys ddl` to create it",
        )
    _check_key_purposes(chk, used_keys)
    for kname, (_, kloc) in declared_versions.items():
        if kname not in used_keys and not partial:
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
        ledger,
        inputs,
        tuple(synthetic),
        tuple(facts),
    )


def _check_key_purposes(chk: Checker, uses: KeyUses) -> None:
    """A key serves one purpose (docs/keys.md): a release's noise key that also made
    pseudonyms would let whoever writes chosen values into a column read keyed hashes of the
    noise's own kind back; each purpose also hashes a differently tagged message."""
    for name, found in uses.items():
        purposes = {p for p, _ in found}
        if len(purposes) < 2:
            continue
        first = NOISE if NOISE in purposes else found[0][0]
        first_loc = next(loc for p, loc in found if p == first)
        for purpose, loc in found:
            if purpose != first:
                chk.error(
                    loc,
                    f"key '{name}' is used for {KEY_PURPOSES[purpose]} here and for "
                    f"{KEY_PURPOSES[first]} at {first_loc}: a key has one purpose",
                    expected="a separate key name for each purpose",
                    hint=f"e.g. `key: {name}_{purpose}` here, loaded with `sqlanon keys load`",
                )


def _check_budget(
    chk: Checker,
    node: YNode,
    budget: tuple[Any, ...],
    releases: list[ReleaseSpec | SyntheticSpec],
) -> None:
    """Each refresh of every release and synthetic table spends its ε and δ (a synthetic
    table's δ is 0): basic composition must fit."""
    for i, kind in enumerate(("epsilon", "delta")):
        spent = sum(Decimal(str(getattr(r, kind, 0))) for r in releases)
        if spent > Decimal(str(budget[i])):
            parts = " + ".join(f"{r.id} {getattr(r, kind, 0)}" for r in releases)
            chk.error(
                node.loc,
                f"the releases spend {kind} {parts} = {spent} per refresh, "
                f"more than the budget's {budget[i]}",
                expected=f"a total {kind} within the budget",
                hint=f"lower a release's {kind}, or raise the budget after review",
            )


def _unique(inputs: list[InputFile]) -> tuple[InputFile, ...]:
    return tuple(sorted(set(inputs), key=lambda i: (i.role, i.path)))


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
        objects += [(s.target, s.target_loc) for s in p.synthetic]
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


def load_fragment(path: Path | str, display: str | None = None) -> None:
    """Validate a fragment on its own (for `sqlanon validate policies/`)."""
    path = Path(path)
    loaded = Loaded()
    read_fragment(path, display or display_path(path), loaded, (path.resolve(),), None)
    for rule in loaded.rules.values():
        read_column(
            loaded.chk,
            rule.name,
            YScalar(rule.name, rule.name, rule.loc, False),
            rule.node,
            rule.base_dir,
            Loaded(loaded.chk, {}, []),
            KeyUses(),
        )
    if loaded.chk.errors:
        raise PolicyError(loaded.chk.errors)
