"""Plan + dialect → output files: one SQL file per view, release, key table and ledger, and the
manifest (sqlanon/output/manifest.py); written or compared by sqlanon/output/write.py.

Output is byte-identical for the same input: objects sorted by file name, JSON with sorted
keys, no timestamps. Each SQL file's header carries the digest of its own object's plan (not
of the whole policy file), so editing one table changes only that table's files; the
manifest records the policy files' digests.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Generator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlanon import __version__
from sqlanon.output.cache import LowerCache
from sqlanon.output.files import MANIFEST, MARKER, Artifact, comment_value, object_file
from sqlanon.output.manifest import manifest, view_entries
from sqlanon.plan.model import Plan, ReleasePlan, SyntheticPlan, ViewPlan
from sqlanon.plan.split import ignore_interrupts
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.layout import wrap
from sqlanon.sql.memo import ColumnMemo
from sqlanon.sql.releases import ledger_statements, release_statements
from sqlanon.sql.synthetic import synthetic_statements
from sqlanon.sql.views import Statement, key_table_statements, view_statements


def _sql_file(header: list[str], statements: list[Statement], dialect: Dialect) -> bytes:
    body = "".join(f"{wrap(s.text, dialect.sqlglot)};\n\n" for s in statements)
    body = body.rstrip("\n") + "\n"
    return ("\n".join(header) + "\n\n" + body).encode("utf-8")


def file_header(dialect: Dialect, what: str, origin: str, digest: str) -> list[str]:
    return [
        f"{MARKER} {__version__} for {dialect.title}. Do not edit: change the policy and run "
        "`sqlanon compile`.",
        f"-- {what}",
        f"-- from {origin}",
        f"-- plan sha256: {digest}",
    ]


def _grants_note(grants: tuple[str, ...], dialect: Dialect) -> list[str]:
    if not grants or dialect.features.grants:
        return []
    note = dialect.features.grants_note or (
        f"{dialect.title} has no GRANT: the policy's grants are listed in manifest.json."
    )
    return [f"-- {line}" for line in textwrap.wrap(note, 90)]


def view_artifact(view: ViewPlan, dialect: Dialect, memo: ColumnMemo | None = None) -> Artifact:
    origin = f"{comment_value(view.policy_file)}, table {comment_value(view.name)}"
    header = file_header(
        dialect, f"view {comment_value('.'.join(view.target))}", origin, view.digest
    )
    header += _grants_note(view.grants, dialect)
    path = object_file("views", view.target)
    return Artifact(path, _sql_file(header, view_statements(view, dialect, memo), dialect))


def _setup_artifact(
    table: tuple[str, ...],
    dialect: Dialect,
    identity: list[str],
    what: str,
    origin: str,
    statements: list[Statement],
) -> Artifact:
    """A setup/ file: a table the views or releases need, named by `identity` in its digest."""
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    header = file_header(dialect, what, origin, digest)
    return Artifact(object_file("setup", table), _sql_file(header, statements, dialect))


def key_table_artifact(table: tuple[str, ...], dialect: Dialect) -> Artifact:
    return _setup_artifact(
        table,
        dialect,
        list(table),
        f"key relation {comment_value('.'.join(table))} (holds no key: "
        "load keys with `sqlanon keys load`)",
        "the policies' `keys.table`",
        key_table_statements(table, dialect),
    )


_SHM = "/dev/shm"
SHM_NEEDED = 1 << 30  # free bytes /dev/shm must have to hold the lowered chunks

# Lowering views is independent per view: large plans are split across processes (forked, so
# the plan is inherited rather than sent). Output is identical to lowering in one process.
PARALLEL_MIN_VIEWS = 200
# per dialect: the views to lower and the dialect (set while a pool runs; forked workers read it)
_JOB: tuple[tuple[tuple[ViewPlan, ...], Dialect], ...] | None = None


# per dialect, in a worker: the columns it lowered (reused by its later chunks)
_MEMOS: dict[str, ColumnMemo] = {}
# a byte shared with the workers (set while a pool runs): nonzero once the caller stopped early
_STOP: Any = None
# the folder the workers leave their chunks' files in (set while a pool runs; _spooled)
_SPOOL: str | None = None


def _lower_chunk(task: tuple[int, int, int]) -> list[Artifact]:
    assert _JOB is not None
    views, dialect = _JOB[task[0]]
    memo = _MEMOS.setdefault(dialect.name, ColumnMemo())
    out: list[Artifact] = []
    for v in views[task[1] : task[2]]:
        if _STOP is not None and _STOP.value:
            break  # the caller stopped early: this result is never read
        out.append(view_artifact(v, dialect, memo))
    return out


def _spooled(task: tuple[int, int, int]) -> str:
    """A chunk's files, left in the spool folder for the main process to read: the result
    pipe carries only the file's name. A worker killed while it wrote tens of megabytes into
    the pipe (the OOM killer) left half a message there, and the executor's thread waited for
    the rest for ever; a name is one write the kernel never splits (under PIPE_BUF), and a
    worker that dies before it sends one breaks the pool, which ends the compile with an
    error."""
    assert _SPOOL is not None
    path = os.path.join(_SPOOL, "-".join(map(str, task)))
    found = _lower_chunk(task)
    try:
        with open(path, "wb") as fh:
            pickle.dump(found, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise SpoolFailed(f"{_SPOOL}: {exc.strerror or exc}") from None
    return path


def _spool_parent() -> str | None:
    """Memory (/dev/shm) where Linux offers enough of it: the files live only between two
    processes, but a dialect of a 1,000-table policy is 20 MB and a container's /dev/shm can be
    64 MB; else the temporary folder."""
    try:
        free = os.statvfs(_SHM)
    except OSError:
        return None
    enough = free.f_bavail * free.f_frsize >= SHM_NEEDED and os.access(_SHM, os.W_OK)
    return _SHM if enough else None


def _unspooled(path: str) -> list[Artifact]:
    with open(path, "rb") as fh:
        found: list[Artifact] = pickle.load(fh)
    os.unlink(path)
    return found


def _pieces(job: int, jobs: int, workers: int) -> int:
    """How many chunks job number `job` of `jobs` is cut into. A worker lowering a dialect
    warms what it reuses (the dialect's columns, its broken lines), so a dialect cut into
    pieces is warmed again by each worker that takes one. With at least as many dialects as
    workers each is one piece (five dialects on two workers: 9-17 % less CPU in the workers,
    benchmarks/compile_scale.py), but for those of the last round, which would leave workers
    idle: each of them is cut into one piece per worker. One dialect is cut finely, to spread
    it evenly."""
    if jobs < workers:
        return workers * 4
    return workers if job >= jobs - jobs % workers else 1


def _lowered_views(
    jobs: list[tuple[tuple[ViewPlan, ...], Dialect]],
    meanwhile: Callable[[], None] = lambda: None,
) -> Generator[list[Artifact], None, None]:
    """Each job's view files, in order. Many views are lowered by one pool of processes for
    every dialect, so while the caller finishes and writes one dialect's output the workers
    are already lowering the next one's; `meanwhile` runs here while they lower the first."""
    global _JOB, _STOP, _SPOOL
    workers = min(os.cpu_count() or 1, 4)
    if (
        sum(len(views) for views, _ in jobs) < PARALLEL_MIN_VIEWS
        or workers < 2
        or "fork" not in multiprocessing.get_all_start_methods()
        or sys.platform != "linux"
    ):
        meanwhile()
        for views, d in jobs:
            memo = ColumnMemo()
            yield [view_artifact(v, d, memo) for v in views]
        return
    tasks: list[tuple[int, int, int]] = []
    chunks: list[int] = []
    for i, (views, _) in enumerate(jobs):
        step = max(1, -(-len(views) // _pieces(i, len(jobs), workers)))
        mine = [(i, lo, min(lo + step, len(views))) for lo in range(0, len(views), step)]
        tasks += mine
        chunks.append(len(mine))
    try:
        _SPOOL = tempfile.mkdtemp(prefix="sqlanon-", dir=_spool_parent())
    except OSError as exc:
        raise LoweringFailed(f"no folder for the lowering processes' files: {exc}") from None
    _JOB = tuple(jobs)
    context = multiprocessing.get_context("fork")
    _STOP = context.RawValue("b", 0)
    # an executor, not a Pool: a worker that dies (killed, out of memory) breaks it and the
    # compile stops with an error, where a Pool would wait for the lost chunk forever
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=ignore_interrupts)
    broken = finished = False
    try:
        try:
            # the first submit forks every worker, so one that dies at once can break the
            # submits of later chunks as well as the wait for a result
            results = pool.map(_spooled, tasks)
            meanwhile()
            for n in chunks:
                yield [a for _ in range(n) for a in _unspooled(next(results))]
            finished = True
        except BrokenProcessPool:
            broken = True
            raise LoweringFailed(
                "a process lowering views ended unexpectedly (killed, or out of memory?); "
                "nothing was written"
            ) from None
        except SpoolFailed as exc:
            raise LoweringFailed(
                f"the lowered views could not be passed between processes ({exc}); nothing "
                "was written"
            ) from None
    finally:
        if not finished:
            _STOP.value = 1  # the chunks running stop at their next view
        spool, _JOB, _STOP, _SPOOL = _SPOOL, None, None, None
        if broken:
            # the executor no longer reads results and ends the other workers with SIGTERM,
            # which a handler inherited from an application that embeds the compiler can
            # delay; SIGKILL cannot be
            for worker in list(pool._processes.values()):
                worker.kill()
        # Otherwise (done, a caller that stopped early because a write failed, a chunk that
        # raised) no worker is killed: one killed while it sends leaves half a message in the
        # pipe, and the executor's thread waits for the rest for ever (a result is a file's
        # name, written whole, but a chunk's error with its traceback is not). The
        # chunks not started are cancelled, and those running (a whole dialect, each) end at
        # the stop flag. Then wait for the executor's thread: it reaps the workers, and while
        # it is reaping one, that worker looks alive to anyone else who asks (its exit code is
        # not yet recorded).
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(spool, ignore_errors=True)  # the files of chunks never read


class LoweringFailed(RuntimeError):
    """A worker process died while lowering, or its files could not be passed on (nothing was
    written)."""


class SpoolFailed(RuntimeError):
    """A worker could not leave its chunk's files in the spool folder (a full disk)."""


def release_artifact(r: ReleasePlan, dialect: Dialect) -> Artifact:
    statements = release_statements(r, dialect)
    return _refreshed_artifact(r, "release", "releases", "docs/dp.md", statements, dialect)


def synthetic_artifact(s: SyntheticPlan, dialect: Dialect) -> Artifact:
    statements = synthetic_statements(s, dialect)
    return _refreshed_artifact(
        s, "synthetic table", "synthetic", "docs/synthetic.md", statements, dialect
    )


def _refreshed_artifact(
    obj: ReleasePlan | SyntheticPlan,
    kind: str,
    folder: str,
    doc: str,
    statements: list[Statement],
    dialect: Dialect,
) -> Artifact:
    """A file refreshed per epoch: its header says what it spends and who may read it."""
    origin = f"{comment_value(obj.policy_file)}, {kind} {comment_value(obj.name)}"
    header = file_header(
        dialect,
        f"{kind} {comment_value(obj.target_name)}, refreshed per epoch ({doc})",
        origin,
        obj.digest,
    )
    header.append(
        f"-- spends epsilon {float(obj.epsilon)!r}, delta {float(obj.delta)!r} per refresh"
    )
    header += _grants_note(obj.grants, dialect)
    path = object_file(folder, obj.target)
    return Artifact(path, _sql_file(header, statements, dialect))


def ledger_artifact(table: tuple[str, ...], dialect: Dialect) -> Artifact:
    return _setup_artifact(
        table,
        dialect,
        ["ledger", *table],
        f"privacy budget ledger {comment_value('.'.join(table))}: each "
        "release refresh appends what it spent",
        "the policies' releases",
        ledger_statements(table, dialect),
    )


def build(plan: Plan, dialect: Dialect, cache: LowerCache | None = None) -> list[Artifact]:
    """Every output file; with `cache`, views and releases lowered by an earlier compile (the
    same plan digest, dialect and tool: sqlanon/output/cache.py) are reused, not lowered."""
    ((_, artifacts),) = build_each(plan, [dialect], cache)
    return artifacts


def build_each(
    plan: Plan, dialects: list[Dialect], cache: LowerCache | None = None
) -> Generator[tuple[Dialect, list[Artifact]], None, None]:
    """`build` for several dialects, each dialect's files as soon as they are complete: the
    views of all of them are lowered by one pool of processes, which goes on lowering the next
    dialect while the caller writes the last one (`sqlanon compile --dialect all`)."""
    found: list[list[Artifact]] = []
    releases: list[list[ReleasePlan]] = []
    keys: list[dict[str, str]] = []
    jobs: list[tuple[tuple[ViewPlan, ...], Dialect]] = []
    for dialect in dialects:
        hits, views, todo, k = _from_cache(plan, dialect, cache)
        found.append(hits)
        releases.append(todo)
        keys.append(k)
        jobs.append((views, dialect))
    rendered: dict[int, tuple[str, str]] = {}  # the views' manifest entries, for each dialect
    lowered = _lowered_views(jobs, lambda: view_entries(plan, cache, rendered))
    try:
        for i, dialect in enumerate(dialects):
            artifacts = next(lowered)
            artifacts += [release_artifact(r, dialect) for r in releases[i]]
            if cache is not None:
                for a in artifacts:
                    cache.put(keys[i][a.path], a.content)
            artifacts += found[i]
            artifacts += [synthetic_artifact(s, dialect) for s in plan.synthetic]
            artifacts += [key_table_artifact(t, dialect) for t in plan.key_tables]
            artifacts += [ledger_artifact(t, dialect) for t in plan.ledgers]
            paths = [a.path for a in artifacts]
            if len(set(paths)) != len(paths):
                # names are checked unique earlier
                raise AssertionError("two objects map to one file")
            artifacts.sort(key=lambda a: a.path)
            text = manifest(plan, dialect, artifacts, cache, rendered)
            artifacts.append(Artifact(MANIFEST, text))
            yield dialect, artifacts
    finally:
        # a caller that stops early closes this generator: the workers stop now, not whenever
        # the lowering generator is collected (a reference cycle or a disabled gc delays that)
        lowered.close()


def _from_cache(
    plan: Plan, dialect: Dialect, cache: LowerCache | None
) -> tuple[list[Artifact], tuple[ViewPlan, ...], list[ReleasePlan], dict[str, str]]:
    """The files an earlier compile lowered (by plan digest), the views and releases still to
    lower, and each one's cache key."""
    if cache is None:
        return [], plan.views, list(plan.releases), {}
    found: list[Artifact] = []
    views: list[ViewPlan] = []
    releases: list[ReleasePlan] = []
    keys: dict[str, str] = {}
    objects: tuple[ViewPlan | ReleasePlan, ...] = (*plan.views, *plan.releases)
    for obj in objects:
        view = isinstance(obj, ViewPlan)
        path = object_file("views" if view else "releases", obj.target)
        keys[path] = cache.key(dialect.name, "view" if view else "release", obj.digest)
        content = cache.get(keys[path])
        if content is not None:
            found.append(Artifact(path, content))
        elif isinstance(obj, ViewPlan):
            views.append(obj)
        else:
            releases.append(obj)
    return found, tuple(views), releases, keys
