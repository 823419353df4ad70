"""Deploy a compiled, reviewed folder — not the policy — and keep an audit trail.

What was reviewed in the pull request is the folder's SQL; `deploy` runs exactly those bytes.
It first verifies the folder: every file the manifest lists exists with the manifest's
sha256, no unlisted SQL file lies beside them, the manifest is for this warehouse's dialect,
and (with a policy given) a fresh compile gives the same bytes — else it refuses, and runs
nothing. Then it runs the setup/ and views/ files in the manifest's order, in one transaction
where DDL is transactional (DuckDB, PostgreSQL: readers see the old views or the new ones),
and appends one row to the audit table in the same transaction: when, the database user and
the OS user, the tool version, the manifest's digest, the policy files' digests, the git
commit of the folder when it is in a repository, each object with its digest, and what was
pruned. Nothing ever updates or deletes an audit row.

releases/ files are refresh scripts: each run spends privacy budget for an epoch, so deploy
records them (their digests are in the audit row) but does not run them; the scheduler does
(docs/deploy.md). Views a previous deploy created that the folder no longer has are listed as
stale, and dropped with `prune` — only views the audit table shows sqlanon created. Rolling
back is deploying an older folder.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot.tokenizer_core import TokenType

from sqlanon import __version__
from sqlanon.output.files import MANIFEST
from sqlanon.sql import dialect as dialects
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.releases import ledger_lock_id
from sqlanon.warehouse.common import DEFAULT_SCHEMA, append_only_table, missing_columns

AUDIT_NAME = "sqlanon_deploys"
# the audit table's columns; JSON documents are text, so every engine stores them alike
AUDIT_COLUMNS = (
    ("deploy", "integer"),  # 1, 2, … in deploy order
    ("deployed_at", "text"),  # UTC, ISO 8601
    ("database_user", "text"),
    ("os_user", "text"),
    ("sqlanon_version", "text"),
    ("dialect", "text"),
    ("manifest_sha256", "text"),
    ("git_commit", "text"),  # of the folder's repository, when it is in one
    ("inputs", "text"),  # policy, fragment and hierarchy files with their digests
    ("objects", "text"),  # every file of the folder with its digest, and whether it ran
    ("views", "text"),  # the views this deploy created or replaced
    ("pruned", "text"),  # views dropped because the folder no longer has them
    ("stale", "text"),  # views earlier deploys created that this folder lacks, kept
    # the lookup tables sqlanon owns after this deploy (sqlanon/sql/lookups.py): those the
    # folder's views fill and, without prune, those earlier deploys left
    ("lookup_tables", "text"),
)
LOCK_TIMEOUT_MS = 5000
_REPLACE_REFUSED = (  # PostgreSQL's CREATE OR REPLACE VIEW refusing a changed column list
    "cannot drop columns from view",
    "cannot change name of view column",
    "cannot change data type of view column",
)


class DeployError(RuntimeError):
    """The folder was refused or the deploy failed; the message says which file and why, and
    whether anything was changed."""


@dataclass(frozen=True)
class Folder:
    """A compiled folder whose files match its manifest."""

    root: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    dialect: Dialect
    files: dict[str, bytes]  # relative path → content, verified

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.manifest["objects"] if o["kind"] == kind]


@dataclass
class DeployResult:
    deploy: int
    audit_table: tuple[str, ...]
    ran: list[str] = field(default_factory=list)  # files run, in order
    recorded: list[str] = field(default_factory=list)  # release files recorded, not run
    pruned: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # earlier views not in this folder, kept
    lookup_tables: list[str] = field(default_factory=list)  # owned after this deploy


def verify(build_dir: Path, expected: dict[str, bytes] | None = None) -> Folder:
    """The folder, refused (DeployError) unless every file matches the manifest — and, given
    `expected` (a fresh compile of the policy), those bytes."""
    path = build_dir / MANIFEST
    if not path.is_file():
        raise DeployError(f"{build_dir}: no {MANIFEST}: not a folder `sqlanon compile` wrote")
    raw = path.read_bytes()
    manifest = json.loads(raw)
    try:
        d = dialects.get(manifest["dialect"])
    except KeyError:
        raise DeployError(f"{path}: unknown dialect {manifest.get('dialect')!r}") from None
    files: dict[str, bytes] = {}
    for name, digest in sorted(manifest["files"].items()):
        file = build_dir / name
        if not file.is_file():
            raise DeployError(f"{file}: listed in the manifest but missing; nothing was run")
        content = file.read_bytes()
        if hashlib.sha256(content).hexdigest() != digest:
            raise DeployError(
                f"{file}: differs from the digest in {MANIFEST} (edited after compile?); "
                "deploy runs only what was compiled and reviewed — recompile, review, "
                "commit; nothing was run"
            )
        files[name] = content
    extra = sorted(str(p.relative_to(build_dir)) for p in build_dir.rglob("*.sql") if p.is_file())
    unlisted = [p for p in extra if p not in files]
    if unlisted:
        raise DeployError(
            f"{build_dir}: {', '.join(unlisted)} not in {MANIFEST} (added by hand?); "
            "nothing was run"
        )
    if expected is not None and expected.get(MANIFEST) != raw:
        every = set(expected) | set(files)
        stale = sorted(n for n in every if n != MANIFEST and expected.get(n) != files.get(n))
        raise DeployError(
            f"{build_dir} is stale: the policy compiles to other SQL "
            f"({', '.join(stale) or MANIFEST}); run `sqlanon compile`, review, commit; "
            "nothing was run"
        )
    digest = hashlib.sha256(raw).hexdigest()
    return Folder(build_dir, manifest, digest, d, files)


def statements(text: str, d: Dialect) -> list[str]:
    """A file's statements, split at the dialect tokenizer's semicolons (never inside a
    literal or a comment); comment-only pieces dropped."""
    tokens = sqlglot.Dialect.get_or_raise(d.sqlglot).tokenize(text)
    out: list[str] = []
    start = 0
    seen = False
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            if seen:
                out.append(text[start : tok.start].strip())
            start, seen = tok.end + 1, False
        else:
            seen = True
    if seen:
        out.append(text[start:].strip())
    return out


def audit_table(folder: Folder) -> tuple[str, ...]:
    """Beside the key relation, else privacy.<name>: where `monitor` keeps its history."""
    for o in folder.manifest["objects"]:
        if o.get("key_table"):
            return (*tuple(o["key_table"])[:-1], AUDIT_NAME)
    return (DEFAULT_SCHEMA, AUDIT_NAME)


def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def deploy(  # type: ignore[no-untyped-def]
    folder: Folder, engine, prune: bool = False, lock_timeout_ms: int = LOCK_TIMEOUT_MS
) -> DeployResult:
    d = folder.dialect
    if engine.dialect != d.name:
        raise DeployError(
            f"{folder.root} was compiled for {d.title}, but the database is "
            f"{dialects.get(engine.dialect).title}; nothing was run"
        )
    table = audit_table(folder)
    dropped: set[str] = set()
    while True:
        try:
            return _deploy(folder, engine, table, prune, lock_timeout_ms, dropped)
        except _Replace as again:
            dropped.add(again.file)


class _Replace(Exception):
    def __init__(self, file: str):
        self.file = file


def _deploy(  # type: ignore[no-untyped-def]
    folder: Folder,
    engine,
    table: tuple[str, ...],
    prune: bool,
    lock_timeout_ms: int,
    dropped: set[str],
) -> DeployResult:
    d = folder.dialect
    txn = d.features.transactional_ddl
    relation = d.relation(table)
    for s in append_only_table(d, table, AUDIT_COLUMNS):
        engine.execute(s)  # idempotent; outside the transaction where DDL is not transactional
    for s in missing_columns(engine, d, table, AUDIT_COLUMNS):
        engine.execute(s)  # an audit table an earlier sqlanon created: its rows are kept
    if txn:
        engine.execute(d.statement("begin").text)
    current = "the audit table"
    try:
        if txn and d.features.lock_table:  # concurrent deploys: one at a time
            engine.execute(d.statement("set_lock_timeout", d.number(lock_timeout_ms)).text)
            engine.execute(d.statement("lock_ledger", d.number(ledger_lock_id(table))).text)
        key = d.ident("deploy")
        columns = [key, d.ident("views"), d.ident("stale"), d.ident("lookup_tables")]
        previous = engine.query(d.statement("latest_row", relation, key, columns).text)
        number = 1 + (previous[0][0] if previous and previous[0][0] is not None else 0)
        owned: set[str] = set()
        owned_lookups: set[str] = set()
        if previous and previous[0][1] is not None:
            owned = set(json.loads(previous[0][1])) | set(json.loads(previous[0][2]))
            owned_lookups = set(json.loads(previous[0][3] or "[]"))
        result = DeployResult(number, table)
        views = {o["file"]: ".".join(o["target"]) for o in folder.objects("view")}
        lookups = {t for o in folder.objects("view") for t in o.get("lookup_tables", [])}
        for name in folder.manifest["run_order"]:
            if name.startswith("releases/"):
                result.recorded.append(name)
                continue
            current = name
            if name in dropped:  # its columns changed: dropped and created again, no CASCADE
                obj = next(o for o in folder.objects("view") if o["file"] == name)
                engine.execute(d.statement("drop_view", d.relation(tuple(obj["target"]))).text)
            for s in statements(folder.files[name].decode("utf-8"), d):
                engine.execute(s)
            result.ran.append(name)
        gone = sorted(owned - set(views.values()))
        unused = sorted(owned_lookups - lookups)  # after the views that join them
        if prune:
            drops = [(t, "drop_view") for t in gone] + [(t, "drop_table") for t in unused]
            for target, drop in drops:
                current = f"pruning {target}"
                engine.execute(d.statement(drop, d.relation(tuple(target.split(".")))).text)
            result.pruned = gone + unused
            result.lookup_tables = sorted(lookups)
        else:
            result.stale = gone
            result.lookup_tables = sorted(lookups | owned_lookups)
        current = "the audit row"
        row = _audit_row(folder, engine, result, sorted(views.values()))
        names = [d.ident(n) for n, _ in AUDIT_COLUMNS]
        marks = [engine.placeholder()] * len(row)
        engine.execute(d.statement("insert_row", relation, names, marks).text, row)
        if txn:
            engine.execute(d.statement("commit").text)
        return result
    except Exception as exc:
        if txn:
            engine.execute(d.statement("rollback").text)
        text = str(exc)
        undone = "nothing was changed (the deploy's transaction was rolled back)"
        if not txn:
            undone = "files before it ran: deploy this folder again once it is fixed"
        replaceable = current.startswith("views/") and current not in dropped
        if replaceable and any(r in text for r in _REPLACE_REFUSED):
            raise _Replace(current) from None
        raise DeployError(f"{current}: {' '.join(text.split())[:600]}; {undone}") from None


def _audit_row(  # type: ignore[no-untyped-def]
    folder: Folder, engine, result: DeployResult, views: list[str]
) -> tuple[Any, ...]:
    d = folder.dialect
    user = engine.query(d.statement("current_user_query").text)[0][0]
    objects = [
        {
            "file": o["file"],
            "kind": o["kind"],
            "name": o["name"],
            "sha256": folder.manifest["files"][o["file"]],
            "ran": o["file"] in result.ran,
        }
        for o in folder.manifest["objects"]
    ]
    inputs = [
        {"path": i["path"], "role": i["role"], "sha256": i["sha256"]}
        for i in folder.manifest.get("inputs", [])
    ]
    return (
        result.deploy,
        dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        str(user),
        getpass.getuser(),
        __version__,
        d.name,
        folder.manifest_sha256,
        git_commit(folder.root),
        json.dumps(inputs, sort_keys=True),
        json.dumps(objects, sort_keys=True),
        json.dumps(views),
        json.dumps(result.pruned),
        json.dumps(result.stale),
        json.dumps(result.lookup_tables),
    )
