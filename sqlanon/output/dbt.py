"""Plan + dialect → a dbt project (`sqlanon compile --format dbt`), docs/dbt.md.

Each view becomes a view model and each release an incremental model (delete+insert by epoch,
the epoch a dbt var) computing exactly the SQL the plain output runs: the statements come from
the same lowering, with the source and key relations swapped for `source()` calls so that
`dbt docs` draws the lineage. Everything sqlanon writes into a file dbt renders with Jinja is
made inert first (`_inert`), so a policy value can never become Jinja, only the references
placed here are.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import yaml

from sqlanon import __version__, resources
from sqlanon.output.emit import file_header
from sqlanon.output.files import GITIGNORE, MARKER, YAML_MARKER, Artifact, comment_value
from sqlanon.output.manifest import column_lineage
from sqlanon.plan.model import (
    ColumnStep,
    Plan,
    ReleasePlan,
    SyntheticPlan,
    ViewPlan,
    source_label,
    to_jsonable,
)
from sqlanon.review.explain import format_params
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.releases import ledger_insert, ledger_statements, output_columns, release_query
from sqlanon.sql.shapes import Sql
from sqlanon.sql.synthetic import output_columns as synthetic_columns
from sqlanon.sql.synthetic import setup_statements, synthetic_query
from sqlanon.sql.views import Statement, grant_statements, key_table_statements, view_query

PROJECT = "sqlanon"
EPOCH_VAR = "sqlanon_epoch"
# what `dbt build` writes beside the project: never committed, never checked by --check
DBT_GITIGNORE = (
    f"{YAML_MARKER}: what dbt writes beside the project\ntarget/\nlogs/\ndbt_packages/\n".encode()
)
_DIGEST = 8


def model_name(target: tuple[str, ...]) -> str:
    """A dbt node name for a target: lower-case word characters; any other name gets a
    digest suffix so that two targets never share a model."""
    parts = []
    for p in target:
        safe = re.sub(r"[^a-z0-9_]", "_", p.lower())[:60]
        if safe != p.lower() or not safe:
            safe = f"{safe}_{hashlib.sha256(p.encode()).hexdigest()[:_DIGEST]}"
        parts.append(safe)
    return "__".join(parts)


def _inert(text: str) -> str:
    """Text that renders through Jinja to itself: every `{` (the only character that can open
    a Jinja tag, expression or comment) is written as an expression printing it."""
    return text.replace("{", "{{ '{' }}")


def _jinja_string(text: str) -> str:
    """A Jinja string literal with the value `text` (Jinja decodes Python escapes)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r") + "'"


def _jinja_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _jinja_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_jinja_value(v) for v in value) + "]"
    raise TypeError(value)


class _References:
    """Placeholders for the Jinja references the models' SQL needs, one table per build. The
    lowering writes a placeholder where a relation goes; `render` makes the SQL inert and
    then puts the references in, in one pass over the text. The placeholders carry a
    per-build random part, so no policy text can spell one."""

    def __init__(self) -> None:
        nonce = secrets.token_hex(8)
        self._prefix = f"sqlanon_ref_{nonce}_"
        # closed by a final `_`, so that no token is a prefix of another (`_1_` vs `_10_`)
        self._token = re.compile(rf"{self._prefix}(\d+)_")
        self._jinja: list[str] = []

    def add(self, jinja: str) -> Sql:
        self._jinja.append(jinja)
        return Sql(f"{self._prefix}{len(self._jinja) - 1}_")

    def render(self, sql: str) -> str:
        return self._token.sub(lambda m: self._jinja[int(m.group(1))], _inert(sql))


class _SourceDialect(Dialect):
    """The target dialect, except that the relations in `refs` are written as placeholders."""

    def __init__(self, base: Dialect, refs: dict[tuple[str, ...], Sql]):
        self.__dict__.update(base.__dict__)
        self._refs = refs

    def relation(self, parts: tuple[str, ...]) -> Sql:
        hit = self._refs.get(parts)
        return hit if hit is not None else super().relation(parts)


# -- sources -----------------------------------------------------------------------------------


def _split(d: Dialect, parts: tuple[str, ...]) -> dict[str, str]:
    """database / schema / identifier of a relation, as the warehouse stores them."""
    stored = [d.stored_name(p) for p in parts]
    out = {"identifier": stored[-1]}
    if len(stored) > 1:
        out["schema"] = stored[-2]
    if len(stored) > 2:
        out["database"] = ".".join(stored[:-2])
    return out


def _source_ref(parts: tuple[str, ...]) -> tuple[str, str]:
    schema = model_name(parts[:-1]) if len(parts) > 1 else "default"
    return schema, model_name(parts[-1:])


def _sources_yaml(plan: Plan, d: Dialect) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    roles = dict.fromkeys(plan.sources, "source")
    roles.update(dict.fromkeys(plan.key_tables, "key relation"))
    for parts in sorted(roles):
        group, table = _source_ref(parts)
        where = _split(d, parts)
        entry = groups.setdefault(
            group,
            {
                "name": group,
                **{k: where[k] for k in ("database", "schema") if k in where},
                "quoting": {"database": True, "schema": True, "identifier": True},
                "tables": [],
            },
        )
        if roles[parts] == "key relation":
            description = (
                "sqlanon's key relation: HMAC key pads, loaded with `sqlanon keys load`. "
                "Never granted to readers of the views."
            )
        else:
            description = "Raw data read by sqlanon's views and releases. Never granted."
        entry["tables"].append(
            {
                "name": table,
                "identifier": where["identifier"],
                "description": description,
                "meta": {"sqlanon": {"role": roles[parts], "relation": ".".join(parts)}},
            }
        )
    return {"version": 2, "sources": list(groups.values())}


# -- models ------------------------------------------------------------------------------------


def _column_description(c: ColumnStep) -> str:
    """What the column is, then how sqlanon made it: the transform, its parameters, the key."""
    text = f"{c.description.rstrip('.')}. " if c.description else ""
    text += f"{c.transform} of {', '.join(c.sources) or '(none)'}"
    if c.params:
        text += f" ({format_params(c.params)})"
    if c.key is not None:
        text += f"; keyed HMAC-SHA256 with key {c.key.name} v{c.key.version}"
    return text + f"; privacy class {c.privacy_class}"


def _config_block(config: dict[str, Any], hooks: list[str], pre_hooks: tuple[str, ...] = ()) -> str:
    """`{{ config(...) }}`; the hooks are SQL dbt renders when it runs them, made inert."""
    items = dict(config)
    if pre_hooks:
        items["pre_hook"] = list(pre_hooks)
    if hooks:
        items["post_hook"] = hooks
    lines = [f"    {k}={_jinja_value(v)}," for k, v in items.items()]
    return "{{\n  config(\n" + "\n".join(lines) + "\n  )\n}}"


def _placement(d: Dialect, target: tuple[str, ...]) -> dict[str, Any]:
    where = _split(d, target)
    out: dict[str, Any] = {}
    if "database" in where:
        out["database"] = where["database"]
    if "schema" in where:
        out["schema"] = where["schema"]
    out["alias"] = where["identifier"]
    return out


def _model_file(header: list[str], config: str, query: str) -> bytes:
    head = "\n".join(_inert(line) for line in header)
    return f"{head}\n\n{config}\n\n{query}\n".encode()


class _Builder:
    def __init__(self, plan: Plan, d: Dialect) -> None:
        self.plan = plan
        self.d = d
        self.refs = _References()
        mapped = {}
        for parts in (*plan.sources, *plan.key_tables):
            group, table = _source_ref(parts)
            call = f"source({_jinja_string(group)}, {_jinja_string(table)})"
            mapped[parts] = self.refs.add("{{ " + call + " }}")
        # lowers with source() placeholders in place of the source and key relations
        self.sourced = _SourceDialect(d, mapped)
        # typed as the SQL output's release table types it: dbt creates the table from the
        # model's SELECT, where a bare literal would be INTEGER (and `apply`'s BIGINT table
        # would then differ from dbt's)
        self.epoch = d.prim("cast", self.refs.add("{{ sqlanon_epoch() }}"), to="integer")
        self.previous_release: ReleasePlan | SyntheticPlan | None = None

    def view(self, v: ViewPlan) -> tuple[Artifact, dict[str, Any]]:
        d = self.d
        query = view_query(v, self.sourced)
        hooks: list[Statement] = []
        if "secure_view" in d.macros:
            hooks.append(Statement(d.statement("secure_view", d.relation(v.target)).text))
        hooks += grant_statements(v.target, v.grants, d, "view")
        config = {"materialized": "view", **_placement(d, v.target)}
        config.update(dict(d.features.dbt_view_config))
        origin = f"{comment_value(v.policy_file)}, table {comment_value(v.name)}"
        header = self.header(f"view {comment_value('.'.join(v.target))}", origin, v.digest)
        name = model_name(v.target)
        config_text = _config_block(config, [_inert(h.text) for h in hooks])
        content = _model_file(header, config_text, self.refs.render(query.text))
        entry = {
            "name": name,
            "description": (f"{v.description.strip()}\n\n" if v.description else "")
            + f"Anonymized {source_label(v.source)} (policy {v.policy}, table {v.name}), "
            "generated by sqlanon: change the policy, not this model.",
            "meta": {
                "sqlanon": {
                    "kind": "view",
                    "policy": v.policy,
                    "policy_file": v.policy_file,
                    "plan_sha256": v.digest,
                    "source": source_label(v.source),
                    "grants": list(v.grants),
                    "keys": [{"name": k.name, "version": k.version} for k in v.keys],
                    "k_anonymity": to_jsonable(v.k_anonymity),
                    "l_diversity": to_jsonable(v.l_diversity),
                    "t_closeness": to_jsonable(v.t_closeness),
                    "dropped": [c.output for c in v.columns if not c.emitted],
                }
            },
            "columns": [
                {
                    "name": d.stored_name(c.output),
                    "quote": True,
                    "description": _column_description(c),
                    "meta": {"sqlanon": column_lineage(c)},
                }
                for c in v.emitted_columns
            ],
        }
        return Artifact(f"models/{name}.sql", content), entry

    def k_test(self, v: ViewPlan) -> Artifact | None:
        k = v.k_anonymity
        if k is None or not k.quasi_identifiers:
            return None
        d = self.d
        name = model_name(v.target)
        relation = self.refs.add("{{ ref(" + _jinja_string(name) + ") }}")
        query = d.statement(
            "small_classes", relation, [d.ident(q) for q in k.quasi_identifiers], d.number(k.k)
        )
        header = self.header(
            f"test: {comment_value('.'.join(v.target))} is {k.k}-anonymous over "
            f"{comment_value(', '.join(k.quasi_identifiers))} (fails on any smaller class)",
            f"{comment_value(v.policy_file)}, table {comment_value(v.name)}",
            v.digest,
        )
        head = "\n".join(_inert(line) for line in header)
        content = f"{head}\n\n{self.refs.render(query.text)}\n".encode()
        return Artifact(f"tests/{name}__k_anonymity.sql", content)

    def release(self, r: ReleasePlan | SyntheticPlan) -> tuple[Artifact, dict[str, Any]]:
        """A release's model, or a synthetic table's (refreshed the same way)."""
        d = self.d
        synthetic = isinstance(r, SyntheticPlan)
        if isinstance(r, SyntheticPlan):
            query = synthetic_query(r, self.sourced, self.epoch)
            cols = synthetic_columns(r)
        else:
            query = release_query(r, self.sourced, self.epoch)
            cols = output_columns(r)
        kind = "synthetic table" if synthetic else "release"
        # the ledger row first, in the model's transaction: it checks the budget and issues
        # the nonce the model's query draws its noise for (docs/dp.md)
        ledger = ledger_insert(r, d, self.epoch)
        hooks = grant_statements(r.target, r.grants, d, "table")
        config: dict[str, Any] = {
            "materialized": "incremental",
            "incremental_strategy": "delete+insert",
            "unique_key": d.stored_name("epoch"),
            "on_schema_change": "fail",
        }
        override = d.features.dbt_release_config
        if override:
            config = dict(override)
        config.update(_placement(d, r.target))
        header = self.header(
            f"{kind} {comment_value('.'.join(r.target))}, refreshed per epoch: dbt build "
            f"--vars '{EPOCH_VAR}: N' (docs/dp.md)",
            f"{comment_value(r.policy_file)}, {kind} {comment_value(r.name)}",
            r.digest,
        )
        header.append(
            f"-- spends epsilon {float(r.epsilon)!r}, delta {float(r.delta)!r} per refresh"
        )
        # the ledger row names the epoch too: its placeholder becomes the macro call
        setup = (
            tuple(x.text for x in setup_statements(r, d)) if isinstance(r, SyntheticPlan) else ()
        )
        config_text = _config_block(
            config,
            [self.refs.render(h.text) for h in hooks],
            (*setup, self.refs.render(ledger.text)),
        )
        if self.previous_release is not None:
            # releases refresh one after another (dbt runs models in parallel): each checks the
            # budget against what the ones before it spent, and the ledger issues one nonce at
            # a time
            previous = _jinja_string(model_name(self.previous_release.target))
            config_text += "\n-- depends_on: {{ ref(" + previous + ") }}"
        self.previous_release = r
        name = model_name(r.target)
        content = _model_file(header, config_text, self.refs.render(query.text))
        columns = []
        for col, logical in cols:
            columns.append(
                {
                    "name": d.stored_name(col),
                    "quote": True,
                    "description": _synthetic_column_description(r, col)
                    if isinstance(r, SyntheticPlan)
                    else _release_column_description(r, col, logical),
                }
            )
        if isinstance(r, SyntheticPlan):
            return Artifact(f"models/{name}.sql", content), _synthetic_entry(r, name, columns)
        entry = {
            "name": name,
            "description": f"Differentially private release of {source_label(r.source)} (policy "
            f"{r.policy}, release {r.name}), one set of rows per epoch; generated by sqlanon.",
            "meta": {
                "sqlanon": {
                    "kind": "release",
                    "policy": r.policy,
                    "policy_file": r.policy_file,
                    "plan_sha256": r.digest,
                    "source": source_label(r.source),
                    "privacy_unit": r.privacy_unit,
                    "epsilon": to_jsonable(r.epsilon),
                    "delta": to_jsonable(r.delta),
                    "grants": list(r.grants),
                    "key": {"name": r.key.name, "version": r.key.version},
                    "ledger": ".".join(r.ledger),
                    "group_by": [column_lineage(g) for g in r.group_by],
                    "measures": [to_jsonable(m) for m in r.measures],
                }
            },
            "columns": columns,
        }
        return Artifact(f"models/{name}.sql", content), entry

    def header(self, what: str, origin: str, digest: str) -> list[str]:
        header = file_header(self.d, what, origin, digest)
        header[0] = header[0].replace("`sqlanon compile`", "`sqlanon compile --format dbt`")
        return header


def _synthetic_entry(t: SyntheticPlan, name: str, columns: list[Any]) -> dict[str, Any]:
    names = [a.name for a in t.attributes]
    return {
        "name": name,
        "description": f"Differentially private synthetic table of {source_label(t.source)} "
        f"(policy {t.policy}, synthetic table {t.name}), one set of rows per epoch; generated "
        "by sqlanon.",
        "meta": {
            "sqlanon": {
                "kind": "synthetic",
                "policy": t.policy,
                "policy_file": t.policy_file,
                "plan_sha256": t.digest,
                "source": source_label(t.source),
                "privacy_unit": t.privacy_unit,
                "epsilon": to_jsonable(t.epsilon),
                "delta": 0.0,
                "grants": list(t.grants),
                "key": {"name": t.key.name, "version": t.key.version},
                "ledger": ".".join(t.ledger),
                "attributes": [column_lineage(a.step) for a in t.attributes],
                "structure": "auto" if t.auto else [[names[p], names[c]] for p, c in t.edges],
            }
        },
        "columns": columns,
    }


def _synthetic_column_description(t: SyntheticPlan, col: str) -> str:
    if col == "epoch":
        return "The refresh this row belongs to (dbt var sqlanon_epoch)."
    a = next(a for a in t.attributes if a.name == col)
    return f"drawn from noisy marginals (docs/synthetic.md): {_column_description(a.step)}"


def _release_column_description(r: ReleasePlan, col: str, kind: str) -> str:
    if col == "epoch":
        return "The refresh this row belongs to (dbt var sqlanon_epoch)."
    for g in r.group_by:
        if g.output == col:
            return "group: " + _column_description(g)
    for m in r.measures:
        if col == m.name:
            return f"{m.agg} of {m.column or 'rows'}, with noise (docs/dp.md)"
        if col.startswith(m.name + "_"):
            return f"{col[len(m.name) + 1 :]} of the noisy {m.name}"
    return kind


def _inert_values(value: Any) -> Any:
    if isinstance(value, str):
        return _inert(value)
    if isinstance(value, dict):
        return {_inert_values(k): _inert_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_inert_values(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (SQL in hooks) as literal blocks, readable in a diff."""


def _literal_blocks(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(c in value for c in "\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _literal_blocks)


def _yaml_file(doc: dict[str, Any], what: str) -> bytes:
    """YAML dbt reads (and renders with Jinja): every string in it made inert."""
    head = (
        f"{YAML_MARKER} {__version__}: {what}. "
        "Do not edit: change the policy and run `sqlanon compile --format dbt`.\n"
    )
    body = yaml.dump(
        _inert_values(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return (head + body).encode()


def _project_yaml(plan: Plan, d: Dialect) -> bytes:
    setup: list[str] = []
    for t in plan.key_tables:
        setup += [s.text for s in key_table_statements(t, d)]
    for t in plan.ledgers:
        setup += [s.text for s in ledger_statements(t, d)]
    doc: dict[str, Any] = {
        "name": PROJECT,
        "version": __version__,
        "config-version": 2,
        "profile": PROJECT,
        "model-paths": ["models"],
        "macro-paths": ["macros"],
        "test-paths": ["tests"],
        "quoting": {"database": True, "schema": True, "identifier": True},
    }
    if setup:
        doc["on-run-start"] = list(dict.fromkeys(setup))  # a schema holding both: once
    return _yaml_file(doc, f"a dbt project for {d.title}")


def _macro_artifacts() -> list[Artifact]:
    folder = resources.assets_dir() / "dbt"
    out = []
    for path in sorted(folder.glob("*.sql")):
        head = f"{MARKER} {__version__}. Do not edit: `sqlanon compile --format dbt` writes it."
        out.append(Artifact(f"macros/{path.name}", (head + "\n" + path.read_text()).encode()))
    return out


def build(plan: Plan, d: Dialect) -> list[Artifact]:
    b = _Builder(plan, d)
    artifacts = _macro_artifacts()
    models = []
    for v in plan.views:
        artifact, entry = b.view(v)
        artifacts.append(artifact)
        models.append(entry)
        test = b.k_test(v)
        if test is not None:
            artifacts.append(test)
    refreshed: list[ReleasePlan | SyntheticPlan] = [*plan.releases, *plan.synthetic]
    for r in refreshed:
        artifact, entry = b.release(r)
        artifacts.append(artifact)
        models.append(entry)
    models.sort(key=lambda m: m["name"])
    artifacts.append(
        Artifact("models/schema.yml", _yaml_file({"version": 2, "models": models}, "models"))
    )
    artifacts.append(Artifact("models/sources.yml", _yaml_file(_sources_yaml(plan, d), "sources")))
    artifacts.append(Artifact("dbt_project.yml", _project_yaml(plan, d)))
    artifacts.append(Artifact(GITIGNORE, DBT_GITIGNORE))
    paths = [a.path for a in artifacts]
    if len(set(paths)) != len(paths):
        raise AssertionError("two objects map to one file")
    return sorted(artifacts, key=lambda a: a.path)
