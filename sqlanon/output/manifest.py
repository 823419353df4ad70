"""manifest.json: every object's file and digests, its plan facts (keys, grants, k, columns
and their lineage), the policies and inputs, and the budgets — one line per column so that a
review diff reads well."""

from __future__ import annotations

import hashlib
import json

from sqlanon import __version__
from sqlanon.output.cache import LowerCache
from sqlanon.output.files import Artifact, object_file
from sqlanon.plan.model import (
    ColumnStep,
    Plan,
    ReleasePlan,
    Source,
    SourceQuery,
    SyntheticPlan,
    ViewPlan,
    to_jsonable,
)
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.lookups import lookup_tables
from sqlanon.transforms import known_types


def manifest(
    plan: Plan,
    dialect: Dialect,
    artifacts: list[Artifact],
    cache: LowerCache | None = None,
    rendered: dict[int, tuple[str, str]] | None = None,
) -> bytes:
    """With `cache`, each view's entry rendered by an earlier compile is read back (the
    lineage of 50,000 columns is most of a manifest's cost). `rendered` keeps each view's
    entry, which no dialect changes but for its file's digest, for the next dialect's manifest
    (keyed by the view objects of this `plan`)."""
    digests = {a.path: hashlib.sha256(a.content).hexdigest() for a in artifacts}
    rendered = {} if rendered is None else rendered
    view_entries(plan, cache, rendered)
    objects: list[object] = []
    files = sorted(((object_file("views", v.target), v) for v in plan.views), key=lambda f: f[0])
    for path, v in files:
        head, tail = rendered[id(v)]
        objects.append(_OneLine(head + _encode_str(digests[path]) + tail))
    doc = {
        "sqlanon": __version__,
        "dialect": dialect.name,
        "policies": [to_jsonable(p) for p in plan.policies],
        "inputs": [to_jsonable(i) for i in plan.inputs],
        "objects": objects
        + [
            _release_entry(r, digests)
            for r in sorted(plan.releases, key=lambda r: object_file("releases", r.target))
        ]
        + [
            _synthetic_entry(t, digests)
            for t in sorted(plan.synthetic, key=lambda t: object_file("synthetic", t.target))
        ],
        "budgets": [to_jsonable(b) for b in plan.budgets],
        "files": {a.path: digests[a.path] for a in artifacts},
        "run_order": run_order([a.path for a in artifacts]),
    }
    return (_pretty_json(doc) + "\n").encode("utf-8")


def view_entries(
    plan: Plan, cache: LowerCache | None, rendered: dict[int, tuple[str, str]]
) -> None:
    """Each view's manifest entry not yet in `rendered` (by the view object's id), rendered
    or read back from `cache`. No dialect changes an entry but for its file's digest, so
    `sqlanon compile --dialect all` renders them while the workers lower the first dialect."""
    for v in plan.views:
        if id(v) not in rendered:
            rendered[id(v)] = _view_entry(v, object_file("views", v.target), cache)


RUN_PHASES = ("setup", "views", "releases", "synthetic")


def run_order(paths: list[str]) -> list[str]:
    """The order to run the SQL files in on a fresh warehouse (docs/deploy.md): setup/ (key
    relations and ledgers), then views/, then releases/ and synthetic/ (each run is a
    refresh: keys loaded and the epoch set first). Within a phase files are independent; they
    are listed by name."""
    phase = {name: i for i, name in enumerate(RUN_PHASES)}
    sql = [p for p in paths if p.split("/", 1)[0] in phase]
    return sorted(sql, key=lambda p: (phase[p.split("/", 1)[0]], p))


_encode_str = json.encoder.encode_basestring


class _OneLine(str):
    """A manifest entry already written as JSON in its place: one line per column reads well
    in a diff, and the C encoder writes it fast; a view's entry is written once for every
    dialect."""


# where a view's entry stands in manifest.json: an item of the top-level "objects" list
_ENTRY_PAD = "    "
_DIGEST_HOLE = _OneLine("\0")  # JSON escapes every control character: no text holds one


def _view_entry(v: ViewPlan, path: str, cache: LowerCache | None) -> tuple[str, str]:
    """A view's entry rendered in place, as the text before and after its file's digest.
    Everything in it is the view plan's (its digest covers it) and no dialect's, so it is
    kept in the lowering cache for the next compile: rendering 50,000 columns' lineage was
    most of an unchanged compile's manifest."""
    key = cache.key("", "entry", v.digest) if cache else ""
    stored = cache.get(key) if cache else None
    if stored is not None:
        parts = stored.decode("utf-8").split("\0")
        if len(parts) == 2:
            return parts[0], parts[1]
    entry = {
        "kind": "view",
        "name": ".".join(v.target),
        "target": list(v.target),
        "file": path,
        "file_sha256": _DIGEST_HOLE,
        "plan_sha256": v.digest,
        "policy": v.policy,
        "policy_table": v.name,
        "source": source_entry(v.source),
        "grants": list(v.grants),
        "key_table": list(v.key_table) if v.key_table and v.keys else None,
        "keys": [{"name": k.name, "version": k.version} for k in v.keys],
        "retention": to_jsonable(v.retention),
        "sample": None
        if v.sample is None
        else {
            "unit": v.sample.unit,
            "fraction": to_jsonable(v.sample.fraction),
            "key": {"name": v.sample.key.name, "version": v.sample.key.version},
        },
        "k_anonymity": to_jsonable(v.k_anonymity),
        "l_diversity": to_jsonable(v.l_diversity),
        "t_closeness": to_jsonable(v.t_closeness),
        "columns": _column_lines_of(v.emitted_columns),
        "dropped": [c.output for c in v.columns if not c.emitted],
        "lookup_tables": [".".join(t) for _, t in lookup_tables(v)],
    }
    text = _pretty_json(entry, _ENTRY_PAD)
    if cache:
        cache.put(key, text.encode("utf-8"))
    head, tail = text.split("\0")
    return head, tail


def _pretty_json(value: object, pad: str = "") -> str:
    """JSON with sorted keys and two-space indentation; _OneLine entries as they are."""
    if isinstance(value, _OneLine):
        return str(value)
    if isinstance(value, str):
        return _encode_str(value)
    inner = pad + "  "
    if isinstance(value, dict) and value:
        items = (f"{inner}{_encode_str(k)}: {_pretty_json(value[k], inner)}" for k in sorted(value))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + _pretty_json(v, inner) for v in value) + "\n" + pad + "]"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _release_entry(r: ReleasePlan, digests: dict[str, str]) -> dict[str, object]:
    path = object_file("releases", r.target)
    return {
        "kind": "release",
        "name": ".".join(r.target),
        "target": list(r.target),
        "file": path,
        "file_sha256": digests[path],
        "plan_sha256": r.digest,
        "policy": r.policy,
        "policy_release": r.name,
        "source": source_entry(r.source),
        "grants": list(r.grants),
        "privacy_unit": r.privacy_unit,
        "epsilon": to_jsonable(r.epsilon),
        "delta": to_jsonable(r.delta),
        "bounds": {
            "max_groups_per_unit": r.max_groups_per_unit,
            "max_rows_per_unit_per_group": r.max_rows_per_unit_per_group,
            "max_rows_per_unit": r.max_rows_per_unit,
        },
        "groups": {"public": [list(g) for g in r.public_groups]}
        if r.public_groups is not None
        else {"threshold": to_jsonable(r.selection)},
        "group_by": _column_lines_of(r.group_by),
        "measures": [
            _OneLine(json.dumps(to_jsonable(m), ensure_ascii=False, separators=(", ", ": ")))
            for m in r.measures
        ],
        "key": {"name": r.key.name, "version": r.key.version},
        "key_table": list(r.key_table),
        "ledger": list(r.ledger),
    }


def _synthetic_entry(t: SyntheticPlan, digests: dict[str, str]) -> dict[str, object]:
    path = object_file("synthetic", t.target)
    names = [a.name for a in t.attributes]
    return {
        "kind": "synthetic",
        "name": t.target_name,
        "target": list(t.target),
        "file": path,
        "file_sha256": digests[path],
        "plan_sha256": t.digest,
        "policy": t.policy,
        "policy_synthetic": t.name,
        "source": source_entry(t.source),
        "grants": list(t.grants),
        "privacy_unit": t.privacy_unit,
        "max_rows_per_unit": t.max_rows_per_unit,
        "epsilon": to_jsonable(t.epsilon),
        "delta": 0.0,
        "rows": t.rows if t.rows is not None else "noisy",
        "attributes": _column_lines_of(tuple(a.step for a in t.attributes)),
        "domains": {a.name: list(a.domain) for a in t.attributes},
        "structure": "auto" if t.auto else [[names[p], names[c]] for p, c in t.edges],
        "marginal_epsilon": to_jsonable(t.cells.epsilon),
        **(
            {
                "one_way_epsilon": to_jsonable(t.one_ways.epsilon),
                "selection_epsilon": to_jsonable(t.selection_epsilon),
            }
            if t.one_ways is not None
            else {}
        ),
        "key": {"name": t.key.name, "version": t.key.version},
        "key_table": list(t.key_table),
        "ledger": list(t.ledger),
    }


def _column_lines_of(steps: tuple[ColumnStep, ...]) -> list[_OneLine]:
    return [_column_line(c) for c in steps]


def _column_line(c: ColumnStep) -> _OneLine:
    """A column's lineage line, rendered once per process for each distinct line: a large
    policy repeats its columns (1,000 tables × 50 columns: 45,288 lines, 530 distinct), and
    rendering them was half the manifest. Keyed by what the line shows, the parameters by
    their repr (10 and 10.0 are equal but print apart), never by a hierarchy's pairs (not
    shown)."""
    key = (
        c.output,
        c.sources,
        c.transform,
        repr(c.params),
        c.key,
        c.privacy_class,
        c.input_type,
        c.output_type,
        c.type_declared,
    )
    line = _LINES.get(key)
    if line is None:
        text = json.dumps(column_lineage(c), ensure_ascii=False, separators=(", ", ": "))
        line = _LINES[key] = _OneLine(text)
        if len(_LINES) > _MAX_LINES:  # a long-lived process (a server) does not grow forever
            _LINES.clear()
            _LINES[key] = line
    return line


_LINES: dict[tuple[object, ...], _OneLine] = {}
_MAX_LINES = 100_000


def column_lineage(c: ColumnStep) -> dict[str, object]:
    # None where no `type:` is declared and the output follows the source column's own
    # type (transforms.known_types): read it from the warehouse's catalog
    input_type, output_type = known_types(c)
    return {
        "name": c.output,
        "sources": list(c.sources),
        "transform": c.transform,
        "params": to_jsonable(c.params) if c.params else {},
        "key": None if c.key is None else {"name": c.key.name, "version": c.key.version},
        "privacy_class": c.privacy_class,
        "input_type": input_type,
        "output_type": output_type,
    }


# -- comparing and writing ---------------------------------------------------------------------


def source_entry(source: Source) -> object:
    """A relation's parts, or the query (its text in its dialect and what it reads)."""
    if isinstance(source, SourceQuery):
        return {
            "sql": source.sql,
            "dialect": source.dialect,
            "reads": [list(r) for r in source.reads],
        }
    return list(source)
