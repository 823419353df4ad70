"""A large policy read and planned in two processes at once.

Reading and validating a 1,000-table policy is a second or two of one core while the other
waits for the plan (docs/benchmarks.md, compile_scale). A table's view plan depends only on its
entry, the policy's header and the files it reads (what an incremental compile relies on,
sqlanon/plan/incremental.py), so the tables can be read in shares: the policy's text is cut into
its entries without parsing it (sqlanon/policy/chunks.py), a forked process reads the second
half of the entries (the others' lines blank, every location in place) while this one reads the
first, and the first entry is read last with every other entry's key uses given, so the checks
over the whole policy (a key's one purpose, key versions set but unused) run over all of it.

Anything less plain returns None and the caller reads the policy whole: several policy files, a
text that cannot be cut, too few tables, no fork, and any policy error — so every error is
reported exactly as a whole read reports it. The plan is the whole read's, equal field by field
(tests/test_split.py).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sqlanon.plan.build import build_plan
from sqlanon.plan.incremental import (
    PlanPart,
    TableRecord,
    assemble,
    part_of,
    target_written_twice,
    uses_of,
)
from sqlanon.plan.model import Plan, ViewPlan
from sqlanon.policy.chunks import Cut, cut_tables
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.files import expand, is_fragment
from sqlanon.policy.load import load_policy
from sqlanon.policy.model import TableFacts

MIN_TABLES = 200  # below this a fork and the results' transfer cost more than they save
# the share of the entries this process reads when it has other work to do meanwhile (`sqlanon
# compile` loads its dialects: five of them, templates compiled afresh, cost about a quarter of
# reading a 1,000-table policy); the forked reader reads the rest, so both end about together
MEANWHILE_SHARE = 0.4

# (path, display, cut) of the policy being split; set while the forked reader runs
_POLICY: tuple[Path, str, Cut] | None = None

Share = tuple[tuple[ViewPlan, ...], tuple[TableFacts, ...]]


def ignore_interrupts() -> None:
    """The first step of each forked helper (this reader; the lowering workers,
    sqlanon/output/emit.py): Ctrl-C is the main process's to handle. A terminal sends SIGINT to
    the whole process group, and a helper it interrupted while sending its result left half a
    message in the result pipe, for which the executor's thread then waited for ever: the
    compile hung instead of ending. The main process stops its helpers itself (the workers at
    their next view, the reader once its share is read)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def split_plan(
    paths: list[str], meanwhile: Callable[[], object] | None = None
) -> tuple[Plan, list[PlanPart]] | None:
    """The plan of the policy files `paths` (and the part an incremental compile keeps), read
    in two processes; None when the policy is to be read whole. `meanwhile` runs here while the
    forked process reads (not when the policy is read whole: the caller runs it then)."""
    global _POLICY
    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform != "linux":
        return None
    files = [(p, shown) for p, shown in expand(paths) if not is_fragment(p)]
    if len(files) != 1:
        return None
    path, display = files[0]
    try:
        text = path.read_bytes()
        cut = cut_tables(text.decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    if cut is None or len(cut.chunks) < max(MIN_TABLES, 3):  # a first entry and two shares
        return None
    n = len(cut.chunks)
    middle = (n + 1) // 2 if meanwhile is None else max(2, round(n * MEANWHILE_SHARE))
    _POLICY = (path, display, cut)
    try:
        # an executor, not a Pool: a reader that dies (killed, out of memory) breaks the
        # executor, and the whole read runs, where a Pool would wait for it forever
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(1, mp_context=context, initializer=ignore_interrupts) as pool:
            second = pool.submit(_read_share, middle, n)
            if meanwhile is not None:
                meanwhile()
            first = _read_share(1, middle)
            rest = second.result()
    except BrokenProcessPool:
        return None
    finally:
        _POLICY = None
    if first is None or rest is None:
        return None
    return _assembled(path, display, text, cut, first, rest)


def _read_share(lo: int, hi: int) -> Share | None:
    """The view plans and facts of entries lo … hi-1, read with the others blank; None on any
    policy error (the whole read reports it)."""
    assert _POLICY is not None
    path, display, cut = _POLICY
    try:
        spec = load_policy(path, display, text=cut.blanked(set(range(lo, hi))), partial=True)
        if [t.id for t in spec.tables] != [c.id for c in cut.chunks[lo:hi]]:
            return None
        plan = build_plan([spec])
    except PolicyError:
        return None
    return plan.views, spec.table_facts


def _assembled(
    path: Path, display: str, text: bytes, cut: Cut, first: Share, rest: Share
) -> tuple[Plan, list[PlanPart]] | None:
    """The first entry read with every other entry's key uses, and the plan of them all."""
    facts = (*first[1], *rest[1])
    others = uses_of(display, zip(cut.chunks[1:], facts, strict=True))
    try:
        spec = load_policy(path, display, text=cut.blanked({0}), other_uses=others)
        if [t.id for t in spec.tables] != [cut.chunks[0].id]:
            return None
        plan = build_plan([spec])
    except PolicyError:
        return None
    facts = (spec.table_facts[0], *facts)
    tables = tuple(TableRecord(c.sha256, f) for c, f in zip(cut.chunks, facts, strict=True))
    views = (plan.views[0], *first[0], *rest[0])
    part = part_of(str(path.resolve()), text, cut, spec, plan, views, tables)
    if target_written_twice([part]):
        return None  # the whole read reports where
    return assemble([part]), [part]
