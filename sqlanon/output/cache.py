"""Incremental compile: the lowered file of each view and release, cached by what decides it.

A view's file is a pure function of its plan (whose digest its header carries), the dialect and
sqlanon itself; so after a one-table edit only that table needs lowering again. An entry's key
is the digest of (the tool, the dialect, the object's kind and plan digest); the tool's digest
covers every file of the package and of dialects/ and the versions of sqlglot and jinja2, so
any change to sqlanon — a template, a transform — misses the cache rather than reusing SQL it
would no longer write. tests/test_compile.py checks an incremental compile byte for byte
against a fresh one.

Where: `$SQLANON_CACHE_DIR`, else `$XDG_CACHE_HOME/sqlanon`, else `~/.cache/sqlanon`;
`SQLANON_CACHE_DIR=off` turns it off. Entries of other tool versions are removed when a
compile opens the cache, and entries unused for CACHE_DAYS days, so it stays about the size of
the outputs compiled lately. A cache that cannot be read or written is skipped silently: it
only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from sqlanon import resources
from sqlanon.plan.model import Plan
from sqlanon.policy.model import PolicySpec

ENV = resources.CACHE_ENV
CACHE_DAYS = 30
_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def tool_digest() -> str:
    """The digest of sqlanon's own code, templates and dialect settings, and of the libraries
    that shape its output."""
    import jinja2
    import sqlglot

    versions = f"sqlglot {getattr(sqlglot, '__version__', '')} jinja2 {jinja2.__version__}"
    h = hashlib.sha256(versions.encode())
    for root in (_PACKAGE, resources.dialects_dir()):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and _counts(p)):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# what can shape a compiled file: code, templates, dialect settings (not the report's scripts)
_SHAPING = {".py", ".j2", ".yml", ".yaml", ".sql", ".json"}


def _counts(path: Path) -> bool:
    return path.suffix in _SHAPING and "__pycache__" not in path.parts


def default_dir() -> Path | None:
    return resources.cache_dir()


class LowerCache:
    """Lowered files by key; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.base = root / "lowered"
        self.root = self.base / tool_digest()[:32]
        self.hits = 0
        self._pruned = False

    @classmethod
    def default(cls) -> LowerCache | None:
        root = default_dir()
        return None if root is None else cls(root)

    def key(self, dialect: str, kind: str, plan_digest: str) -> str:
        return hashlib.sha256(f"{dialect}\0{kind}\0{plan_digest}".encode()).hexdigest()

    def get(self, key: str) -> bytes | None:
        path = self.root / key[:2] / key
        try:
            content = path.read_bytes()
            os.utime(path)  # recently used: kept by the pruning below
        except OSError:
            return None
        self.hits += 1
        return content

    def put(self, key: str, content: bytes) -> None:
        folder = self.root / key[:2]
        try:
            self._prune()
            folder.mkdir(parents=True, exist_ok=True)
            # written whole, then renamed: a reader never sees half an entry
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.replace(tmp, folder / key)
        except OSError:
            pass

    def _prune(self) -> None:
        """Once per compile: other tool versions' entries, and entries unused for long."""
        if self._pruned:
            return
        self._pruned = True
        if self.base.is_dir():
            for other in self.base.iterdir():
                if other != self.root:
                    shutil.rmtree(other, ignore_errors=True)
        cutoff = time.time() - CACHE_DAYS * 86400
        for path in self.root.glob("*/*") if self.root.is_dir() else ():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)


class PlanCache:
    """The plan of a policy set whose files have not changed: a compile of an unchanged
    policy (`compile --check` in every pull request's CI) skips loading, validating and
    planning — 4 s of a 1,000-table policy — as well as lowering.

    An entry is keyed by the tool's digest, the working folder and the files the paths name
    (folders expanded); it holds every input file's digest — policy, fragments, hierarchies —
    and is used only while each file still has it. Entries are pickles: the cache folder is
    created private (0700) and an entry not owned by the user, or writable by others, is
    ignored, like any entry that cannot be read."""

    def __init__(self, root: Path) -> None:
        self.root = root / "plans" / tool_digest()[:32]
        self.hit = False
        self.replanned = 0  # tables read again by an incremental plan

    @classmethod
    def default(cls) -> PlanCache | None:
        root = default_dir()
        return None if root is None else cls(root)

    def _entry(self, paths: list[str]) -> Path:
        from sqlanon.policy.files import expand

        files = [str(p.resolve()) for p, _ in expand(paths)]
        key = hashlib.sha256("\0".join([os.getcwd(), *files]).encode()).hexdigest()
        return self.root / key

    def get(self, paths: list[str]) -> Plan | None:
        """The plan stored for `paths` if none of its files changed; else, after an edit of
        some tables, the plan with only those tables read again (sqlanon/plan/incremental.py;
        `replanned` says how many), stored in its place after a large edit; else None."""
        import pickle

        try:
            entry = self._entry(paths)
            st = entry.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None
            inputs, plan, parts = pickle.loads(entry.read_bytes())
            if all(hashlib.sha256(Path(p).read_bytes()).hexdigest() == h for p, h in inputs):
                self.hit = True
                return plan  # type: ignore[no-any-return]
        except Exception:  # missing, unreadable, of another shape: plan afresh
            return None
        return self._replan(paths, parts)

    def _replan(self, paths: list[str], parts: list[Any]) -> Plan | None:
        from sqlanon.plan.incremental import replan
        from sqlanon.policy.files import expand, is_fragment

        try:
            files = [(p, shown) for p, shown in expand(paths) if not is_fragment(p)]
            found = replan(parts, files) if parts else None
        except Exception:  # a cache only ever saves time: plan afresh
            return None
        if found is None:
            return None
        plan, new_parts, self.replanned = found
        # storing costs about 0.2 ms per table (pickling the plan), reading one about 3 ms:
        # after a small edit the stored plan stays, and the next compile re-reads those
        # tables again rather than pay the store on every compile of a pull request
        if self.replanned * 16 > sum(len(p.views) for p in new_parts):
            self._store(paths, plan, new_parts)
        return plan

    def put(
        self,
        paths: list[str],
        plan: Plan,
        specs: list[PolicySpec] | None = None,
        parts: list[Any] | None = None,
    ) -> None:
        """Store the plan of `paths`; with the `specs` it was planned from (or the `parts`
        made of them, sqlanon/plan/incremental.py), also what a later compile needs to read
        again only the tables an edit changed."""
        parts = list(parts or [])
        if specs is not None and not parts:
            from sqlanon.plan.incremental import parts_of

            try:
                texts = [Path(spec.file).read_bytes() for spec in specs]
                parts = parts_of(specs, plan, texts)
            except (OSError, ValueError):
                parts = []
        self._store(paths, plan, parts)

    def _store(self, paths: list[str], plan: Plan, parts: list[Any]) -> None:
        import pickle

        inputs = [(i.path, i.sha256) for i in plan.inputs]
        try:
            entry = self._entry(paths)
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            for folder in (self.root, self.root.parent):  # plans/ and its tool folder only
                folder.chmod(0o700)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(pickle.dumps((inputs, plan, parts), protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, entry)
        except OSError:
            pass
