"""The dialects' compiled template code, kept for the process and in the user's cache between
runs.

Every dialect's environment is configured alike, and compiled code reads filters and globals
from the environment it runs in, so one compilation serves every dialect: the base templates
(two thirds of the text) are compiled once per process, not once per dialect (`--dialect all`
loaded five dialects in 2 s, most of it compiling the same base five times).

Every `sqlanon compile` is a new process, and jinja2 compiling the templates (110 KB of them)
cost 0.35 s of it — half of a compile of an unchanged 1,000-table policy. The compiled code of
each template file is kept under the cache folder (sqlanon/resources.py: `cache_dir`), keyed by
the template's text, the environment's options, jinja2's version and the interpreter's bytecode
magic, so a changed template, jinja2 or Python is compiled again rather than read back.

Code read back is run, so the store is kept like the plan cache: its folder is created private
(0700), and an entry not owned by the user or writable by anyone else is ignored and compiled
afresh, as is anything that cannot be read. `SQLANON_CACHE_DIR=off` turns it off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import stat
import tempfile
import time
from pathlib import Path
from types import CodeType

import jinja2

from sqlanon import resources

KEEP_DAYS = 30  # entries unused this long are removed when a new one is written
_LOADED: dict[str, CodeType] = {}  # this process's, by key


def compiled(env: jinja2.Environment, source: str) -> CodeType:
    """`source` compiled for `env`: this process's, read back from the cache, or compiled (and
    stored there)."""
    key = _key(env, source)
    code = _LOADED.get(key)
    if code is None:
        code = _LOADED[key] = _load(env, source, key)
    return code


def _load(env: jinja2.Environment, source: str, key: str) -> CodeType:
    root = resources.cache_dir()
    if root is None:
        return _compile(env, source)
    folder = root / "templates"
    path = folder / key
    code = _read(path)
    if code is None:
        code = _compile(env, source)
        _store(folder, path, code)
    return code


def _compile(env: jinja2.Environment, source: str) -> CodeType:
    code = env.compile(source)
    assert isinstance(code, CodeType)  # not raw: compile() returns a code object
    return code


def _key(env: jinja2.Environment, source: str) -> str:
    options = (
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.autoescape,
        sorted(env.filters),
        sorted(env.tests),
    )
    h = hashlib.sha256(importlib.util.MAGIC_NUMBER)
    h.update(f"jinja2 {jinja2.__version__}\0{options!r}\0".encode())
    h.update(source.encode("utf-8"))
    return h.hexdigest()


def _read(path: Path) -> CodeType | None:
    try:
        st = path.lstat()  # a link is not followed: only a file the user wrote here is read
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
        code = marshal.loads(path.read_bytes())
        os.utime(path)  # recently used: kept by the pruning below
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _store(folder: Path, path: Path, code: CodeType) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)  # also when an older or hand-made folder was looser
        cutoff = time.time() - KEEP_DAYS * 86400
        for old in folder.iterdir():
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
        # written whole (private), then renamed: a reader never sees half an entry
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(marshal.dumps(code))
        os.replace(tmp, path)
    except OSError:
        pass
