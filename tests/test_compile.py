"""Compiling: byte-identical output, --check, change locality, atomic writes, user files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sqlanon.output import emit, files
from sqlanon.output import write as output_write

RETAIL = "examples/retail/policy.yml"


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_compiling_twice_gives_identical_bytes(workdir, cli):
    assert cli("compile", RETAIL, "--out", "out1").exit_code == 0
    assert cli("compile", RETAIL, "--out", "out2").exit_code == 0
    first, second = _snapshot(workdir / "out1"), _snapshot(workdir / "out2")
    assert first == second
    assert set(first) == {
        "manifest.json",
        "releases/analytics.customers_by_country.sql",
        "releases/analytics.orders_by_status_year.sql",
        "setup/privacy.sqlanon_keys.sql",
        "setup/privacy.sqlanon_ledger.sql",
        "views/anon.customers.sql",
        "views/anon.orders.sql",
        "views/anon.web_sessions.sql",
    }


def test_output_does_not_depend_on_process_state(workdir):
    """A fresh interpreter with another hash seed writes the same bytes (no set ordering,
    no timestamps, no absolute paths)."""
    outs = []
    for seed in ("1", "2"):
        out = f"out_seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "sqlanon", "compile", RETAIL, "--out", out],
            check=True,
            env=env,
            capture_output=True,
        )
        outs.append(_snapshot(workdir / out))
    assert outs[0] == outs[1]
    manifest = (workdir / "out_seed1" / "manifest.json").read_text()
    assert str(workdir) not in manifest


def test_committed_example_output_is_current(cli, monkeypatch):
    """examples/*/build is what users would commit: it must match a fresh compile."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    for example in ("retail", "adult", "tpch"):
        result = cli(
            "compile",
            f"examples/{example}/policy.yml",
            "--dialect",
            "all",
            "--out",
            f"examples/{example}/build",
            "--check",
        )
        assert result.exit_code == 0, result.output


def test_check_exits_1_after_an_edit_and_0_after_recompiling(workdir, cli):
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    assert cli("compile", RETAIL, "--out", "out", "--check").exit_code == 0
    policy = workdir / RETAIL
    policy.write_text(policy.read_text().replace("length: 3}", "length: 2}"))
    result = cli("compile", RETAIL, "--out", "out", "--check")
    assert result.exit_code == 1
    assert "stale: out/views/anon.customers.sql" in result.output
    assert "stale: out/manifest.json" in result.output
    before = _snapshot(workdir / "out")
    assert _snapshot(workdir / "out") == before, "--check writes nothing"
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    assert cli("compile", RETAIL, "--out", "out", "--check").exit_code == 0


def test_check_lists_missing_and_extra_files(workdir, cli):
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    (workdir / "out/views/anon.orders.sql").unlink()
    stray = workdir / "out/views/anon.old.sql"
    stray.write_text(files.MARKER + " 0.0.1\nCREATE VIEW x AS SELECT 1;\n")
    result = cli("compile", RETAIL, "--out", "out", "--check")
    assert result.exit_code == 1
    assert "missing: out/views/anon.orders.sql" in result.output
    assert "extra: out/views/anon.old.sql" in result.output
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    assert not stray.exists(), "a generated file the policy no longer produces is removed"


def test_a_change_to_one_table_touches_only_its_files(workdir, cli):
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    before = _snapshot(workdir / "out")
    policy = workdir / RETAIL
    policy.write_text(
        policy.read_text().replace(
            "ship_zip: {transform: prefix, length: 3}", "ship_zip: {transform: prefix, length: 2}"
        )
    )
    inode = (workdir / "out" / "views" / "anon.customers.sql").stat().st_ino
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    after = _snapshot(workdir / "out")
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"views/anon.orders.sql", "manifest.json"}
    # an unchanged file is linked into the new folder, not written again
    assert (workdir / "out" / "views" / "anon.customers.sql").stat().st_ino == inode


def test_files_sqlanon_did_not_generate_are_kept(workdir, cli):
    (workdir / "out").mkdir()
    (workdir / "out/README.md").write_text("our notes")
    (workdir / "out/views").mkdir()
    (workdir / "out/views/handwritten.sql").write_text("SELECT 1;")
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    assert (workdir / "out/README.md").read_text() == "our notes"
    assert (workdir / "out/views/handwritten.sql").read_text() == "SELECT 1;"
    result = cli("compile", RETAIL, "--out", "out", "--check")
    assert result.exit_code == 0, "user files are neither stale nor extra"


def test_an_interrupted_write_leaves_the_old_output_intact(workdir, cli, monkeypatch):
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    before = _snapshot(workdir / "out")
    policy = workdir / RETAIL
    policy.write_text(policy.read_text().replace("length: 3}", "length: 2}"))

    calls = {"n": 0}
    real_put = output_write._put

    class Crash(Exception):
        pass

    def dying_put(target, content):
        calls["n"] += 1
        if calls["n"] == 3:  # partway through writing the new files
            raise Crash
        return real_put(target, content)

    monkeypatch.setattr(output_write, "_put", dying_put)
    with pytest.raises(Crash):
        cli("compile", RETAIL, "--out", "out")
    monkeypatch.setattr(output_write, "_put", real_put)
    assert _snapshot(workdir / "out") == before
    leftovers = [p.name for p in workdir.iterdir() if p.name.startswith(".sqlanon-")]
    assert leftovers == []
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    assert _snapshot(workdir / "out") != before


def test_the_staged_files_are_made_durable_before_the_exchange(workdir, cli, monkeypatch):
    """One syncfs of the file system where Linux has it; else an fsync of every staged file
    and folder — in both cases before the exchange publishes the new output."""
    events: list[str] = []
    real_exchange, real_fsync, real_syncfs = output_write._exchange, os.fsync, output_write._syncfs

    def exchange(a, b):
        events.append("exchange")
        return real_exchange(a, b)

    def syncfs(fd):
        events.append("syncfs")
        return real_syncfs(fd)

    monkeypatch.setattr(output_write, "_exchange", exchange)
    monkeypatch.setattr(output_write, "_syncfs", syncfs)
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0  # a first write: a rename
    policy = workdir / RETAIL
    policy.write_text(policy.read_text().replace("length: 3}", "length: 2}"))
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    assert events == ["syncfs", "syncfs", "exchange"]

    events.clear()
    monkeypatch.setattr(output_write, "_syncfs", lambda fd: False)  # no syncfs here
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    policy.write_text(policy.read_text().replace("length: 2}", "length: 1}"))
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    files_written = 2  # the edited view and the manifest; the rest are links to the old bytes
    assert events[-2:] == ["exchange", "fsync"]  # the parent folder, after the exchange
    assert events[:-2].count("fsync") >= files_written + 2  # files, views/ and the root
    assert "views" in (workdir / "out/manifest.json").read_text()


def test_headers_and_manifest_lineage(workdir, cli):
    assert cli("compile", RETAIL, "--out", "out").exit_code == 0
    view = (workdir / "out/views/anon.customers.sql").read_text()
    lines = view.splitlines()
    assert lines[0].startswith("-- Generated by sqlanon 0.1.0 for DuckDB. Do not edit")
    assert lines[1] == '-- view "anon.customers"'
    assert lines[2] == '-- from "examples/retail/policy.yml", table "customers"'
    assert lines[3].startswith("-- plan sha256: ") and len(lines[3]) == len("-- plan sha256: ") + 64
    manifest = json.loads((workdir / "out/manifest.json").read_text())
    policy_sha = hashlib.sha256((workdir / RETAIL).read_bytes()).hexdigest()
    assert manifest["policies"] == [{"file": RETAIL, "name": "retail", "sha256": policy_sha}]
    customers = next(o for o in manifest["objects"] if o["name"] == "anon.customers")
    cols = {c["name"]: c for c in customers["columns"]}
    assert cols["customer_id"]["key"] == {"name": "customer", "version": 1}
    assert cols["customer_id"]["transform"] == "pseudonymize"
    assert cols["age_band"]["sources"] == ["birth_date"]
    assert cols["age_band"]["privacy_class"] == "quasi_identifier"
    assert customers["dropped"] == ["full_name"]
    assert customers["k_anonymity"] == {
        "k": 5,
        "action": "suppress",
        "quasi_identifiers": ["age_band", "gender", "zip", "country"],
    }
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((workdir / "out" / rel).read_bytes()).hexdigest() == digest


def test_dialect_all_writes_one_folder_per_dialect(workdir, cli):
    result = cli("compile", RETAIL, "--dialect", "all", "--out", "out")
    assert result.exit_code == 0, result.output
    assert (workdir / "out/duckdb/manifest.json").exists()


def test_unknown_dialect_is_a_usage_error(workdir, cli):
    result = cli("compile", RETAIL, "--dialect", "oracle", "--out", "out")
    assert result.exit_code == 2
    assert "unknown dialect 'oracle'" in result.output


def test_refuses_to_swap_out_a_repository_root(workdir, cli):
    (workdir / ".git").mkdir()
    result = cli("compile", RETAIL, "--out", ".")
    assert result.exit_code == 2
    assert "git work tree" in result.output


def test_parallel_lowering_writes_the_same_bytes(monkeypatch, tmp_path):
    """Large plans are lowered in forked workers; the result must not differ in any byte."""
    from sqlanon.plan.build import build_plan
    from sqlanon.policy.load import load_policy
    from sqlanon.sql import dialect

    tables = "\n".join(
        f"  t{i}:\n    source: raw.t{i}\n    target: anon.t{i}\n    columns:\n"
        f"      a: {{transform: mask_email}}\n      b: {{transform: bucket, width: {i + 1}}}\n"
        f"      c: {{transform: pseudonymize, key: k, length: 16}}"
        for i in range(60)
    )
    path = tmp_path / "p.yml"
    path.write_text(f"sqlanon: 1\nname: p\nkeys: {{table: k.k}}\ntables:\n{tables}\n")
    plan = build_plan([load_policy(path)])
    d = dialect.get("duckdb")
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10**9)
    serial = emit.build(plan, d)
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    parallel = emit.build(plan, d)
    assert [(a.path, a.content) for a in serial] == [(a.path, a.content) for a in parallel]

    # every dialect from one pool, as `compile --dialect all` does, with one dialect read
    # back from the lowering cache whole and another in part (jobs of 0 and of some views)
    from sqlanon.output.cache import LowerCache

    everyone = [dialect.get(n) for n in dialect.available()]
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10**9)
    expected = {x.name: emit.build(plan, x) for x in everyone}
    cache = LowerCache(tmp_path / "cache")
    emit.build(plan, d, cache)
    part = next(x for x in everyone if x is not d)
    emit.build(replace(plan, views=plan.views[:25]), part, cache)
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    for use in (None, cache):
        got = {x.name: out for x, out in emit.build_each(plan, everyone, use)}
        assert list(got) == [x.name for x in everyone]
        for name, out in got.items():
            assert [(a.path, a.content) for a in out] == [
                (a.path, a.content) for a in expected[name]
            ], name
    # a caller that stops early (a write failed) stops the workers with it
    import multiprocessing

    # children of earlier tests in this (xdist) process are not this build's to stop
    before = set(multiprocessing.active_children())
    each = emit.build_each(plan, everyone)
    next(each)
    assert set(multiprocessing.active_children()) - before
    each.close()
    assert set(multiprocessing.active_children()) <= before


def _dies_in_a_later_chunk(task):  # type: ignore[no-untyped-def]
    if task[1] > 0:  # a worker killed (out of memory, say) in the middle of a compile
        os._exit(9)
    return _REAL_LOWER_CHUNK(task)


_REAL_LOWER_CHUNK = emit._lower_chunk


def _forty_tables(tmp_path: Path) -> Path:
    """A policy of 40 one-column tables: enough views to be lowered by a pool of workers."""
    tables = "\n".join(
        f"  t{i}:\n    source: raw.t{i}\n    target: anon.t{i}\n    columns:\n"
        "      a: {transform: mask_email}"
        for i in range(40)
    )
    path = tmp_path / "p.yml"
    path.write_text(f"sqlanon: 1\nname: p\ntables:\n{tables}\n")
    return path


def test_a_lowering_worker_that_dies_stops_the_compile_with_an_error(monkeypatch, tmp_path, cli):
    """Not a hang (a Pool waits for a lost chunk forever): an error, no worker left behind,
    nothing written."""
    import multiprocessing

    path = _forty_tables(tmp_path)
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    monkeypatch.setattr(emit, "_lower_chunk", _dies_in_a_later_chunk)
    out = tmp_path / "out"
    # children of earlier tests in this (xdist) process are not this compile's to stop
    before = set(multiprocessing.active_children())
    result = cli("compile", str(path), "--out", str(out), env={"SQLANON_CACHE_DIR": "off"})
    assert result.exit_code != 0
    assert "a process lowering views ended unexpectedly" in result.output
    assert not out.exists()
    assert set(multiprocessing.active_children()) <= before


def _dies_at_once(task):  # type: ignore[no-untyped-def]
    os._exit(9)


class _SubmitsAfterADeath(emit.ProcessPoolExecutor):
    """Submits the second chunk only once a worker's death has broken the pool: a worker that
    dies at once, while the compile is still handing out chunks."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future = super().submit(fn, *args, **kwargs)
        deadline = time.monotonic() + 10
        while self._queue_count == 1 and not self._broken and time.monotonic() < deadline:
            time.sleep(0.01)
        return future


def _lowering_plan(tmp_path):  # type: ignore[no-untyped-def]
    from sqlanon.plan.build import build_plan
    from sqlanon.policy.load import load_policy

    return build_plan([load_policy(_forty_tables(tmp_path))])


def test_a_worker_that_dies_while_chunks_are_handed_out_is_a_lowering_error(monkeypatch, tmp_path):
    """Not the executor's own BrokenProcessPool escaping from the submits."""
    import multiprocessing

    from sqlanon.sql import dialect

    plan = _lowering_plan(tmp_path)
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    monkeypatch.setattr(emit, "_lower_chunk", _dies_at_once)
    monkeypatch.setattr(emit, "ProcessPoolExecutor", _SubmitsAfterADeath)
    before = set(multiprocessing.active_children())
    with pytest.raises(emit.LoweringFailed):
        emit.build(plan, dialect.get("duckdb"))
    assert set(multiprocessing.active_children()) <= before


@pytest.mark.parametrize("how", ["finished", "closed early", "a worker died"])
def test_no_lowering_worker_looks_alive_after_the_lowering_returns(monkeypatch, tmp_path, how):
    """The executor's thread reaps the workers while the compile stops them; a worker it is
    reaping looked alive (its exit code not yet recorded) to a compile that returned at once
    -- about one run in ten. Thirty runs each, every one checked the moment it returns."""
    import multiprocessing

    from sqlanon.sql import dialect

    plan = _lowering_plan(tmp_path)
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    if how == "a worker died":
        monkeypatch.setattr(emit, "_lower_chunk", _dies_in_a_later_chunk)
    jobs = [(plan.views, dialect.get("duckdb"))]
    before = set(multiprocessing.active_children())
    for _ in range(30):
        lowered = emit._lowered_views(jobs)
        if how == "finished":
            assert len([a for views in lowered for a in views]) == 40
        elif how == "closed early":
            next(lowered)
            lowered.close()
        else:
            with pytest.raises(emit.LoweringFailed):
                list(lowered)
        assert set(multiprocessing.active_children()) <= before


def _hangs_not(tmp_path: Path, script: str, size: int, what: str, group: bool = False) -> str:
    """Run `script` over the forty-table policy in its own interpreter (on the code a hang test
    guards against, the executor's thread hangs for good, and a test process that hangs
    cannot report it), its workers' large results `size` bytes each; its output."""
    path = _forty_tables(tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(path), str(size)],
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=group,  # its own process group, for signals sent to one
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} hung")
    assert done.returncode == 0, done.stderr
    return done.stdout


_WORKERS_SEND_LARGE_RESULTS = """
import multiprocessing, os, signal, sys, time
from sqlanon.output import emit
from sqlanon.output.files import Artifact
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect

real = emit._lower_chunk
size = int(sys.argv[2])

def large(task):
    # the later dialects' chunks are large results, sent in many writes
    return real(task) if task[0] == 0 else [Artifact("x.sql", b"-" * size)]

emit._lower_chunk = large
emit.PARALLEL_MIN_VIEWS = 10
plan = build_plan([load_policy(sys.argv[1])])
"""

_STOPS_EARLY_WHILE_WORKERS_SEND = (
    _WORKERS_SEND_LARGE_RESULTS
    + """
jobs = [(plan.views, dialect.get("duckdb"))] * 4
for _ in range(25):
    lowered = emit._lowered_views(jobs)
    next(lowered)
    lowered.close()
    assert not multiprocessing.active_children()
print("stopped 25 times")
"""
)


def test_a_caller_that_stops_while_workers_send_results_does_not_hang(tmp_path):
    """A write that fails after the first dialect closes the lowering while the workers are
    still sending the next dialects' chunks. Killing them then left half a message in the
    result pipe, and the executor's thread waited for the rest for ever (a CI run hung)."""
    out = _hangs_not(tmp_path, _STOPS_EARLY_WHILE_WORKERS_SEND, 2**22, "closing early")
    assert "stopped 25 times" in out


_CTRL_C_WHILE_WORKERS_SEND = (
    _WORKERS_SEND_LARGE_RESULTS
    + """
jobs = [(plan.views, dialect.get("duckdb"))] * 6
for i in range(25):
    lowered = emit._lowered_views(jobs)
    next(lowered)
    try:
        time.sleep(0.01 * (i % 5))
        os.killpg(0, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole group
        time.sleep(30)
        raise SystemExit("no KeyboardInterrupt")
    except KeyboardInterrupt:
        lowered.close()
    assert not multiprocessing.active_children()
print("interrupted 25 times")
"""
)


def test_ctrl_c_while_workers_send_results_does_not_hang(tmp_path):
    """Ctrl-C reaches every process of the group: a worker it interrupted while sending a
    16 MB result left half a message in the pipe, and the executor's thread waited for the
    rest for ever (four runs of 25 interrupts each hung, at the 4th to the 20th). The workers
    now ignore it and the main process stops them (split.ignore_interrupts)."""
    out = _hangs_not(tmp_path, _CTRL_C_WHILE_WORKERS_SEND, 2**24, "Ctrl-C", group=True)
    assert "interrupted 25 times" in out


_WORKER_KILLED_WHILE_SENDING = (
    _WORKERS_SEND_LARGE_RESULTS
    + """
import random
rng = random.Random(5)
jobs = [(plan.views, dialect.get("duckdb"))] * 6
failed = 0
for i in range(25):
    lowered = emit._lowered_views(jobs)
    next(lowered)
    time.sleep(rng.uniform(0, 0.05))
    worker = rng.choice(multiprocessing.active_children())
    os.kill(worker.pid, signal.SIGKILL)  # the OOM killer, say
    try:
        for _ in lowered:
            pass
    except emit.LoweringFailed:
        failed += 1
    assert not multiprocessing.active_children()
print("killed 25 times;", failed, "failed")
"""
)


def test_a_worker_killed_while_it_sends_its_result_does_not_hang(tmp_path):
    """A worker killed from outside (the OOM killer) while it wrote a large result into the
    result pipe left half a message there, and the executor's thread waited for the rest for
    ever. Results now go through files, the pipe carrying only their names (emit._spooled):
    the compile ends with an error, or with every result, never hangs."""
    out = _hangs_not(tmp_path, _WORKER_KILLED_WHILE_SENDING, 2**24, "a killed worker")
    assert "killed 25 times" in out


_MARKS: list[Path] = []  # where the slow lowering below marks each view it lowered
_REAL_VIEW_ARTIFACT = emit.view_artifact


def _slow_after_the_first_dialect(view, d, memo=None):  # type: ignore[no-untyped-def]
    if d.name != "duckdb":
        time.sleep(0.05)
        (_MARKS[0] / f"{d.name}-{view.name}").touch()
    return _REAL_VIEW_ARTIFACT(view, d, memo)


def test_a_caller_that_stops_early_does_not_wait_for_the_dialects_being_lowered(
    monkeypatch, tmp_path
):
    """Each worker lowers a whole dialect at a time: a write that fails after the first
    dialect must not wait for the others to be lowered (40 views each, 2 s here) before the
    error is reported. The running chunks stop at their next view."""
    from sqlanon.sql import dialect

    plan = _lowering_plan(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    monkeypatch.setattr(emit, "view_artifact", _slow_after_the_first_dialect)
    monkeypatch.setattr(sys.modules[__name__], "_MARKS", [marks])
    names = ["duckdb", "postgres", "snowflake", "spark"]
    lowered = emit._lowered_views([(plan.views, dialect.get(n)) for n in names])
    assert len(next(lowered)) == 40
    before = len(list(marks.iterdir()))
    lowered.close()
    # each running chunk finishes the view it is on; without the stop, every chunk handed
    # out (one running per worker, one queued) ran to its 40th view: 120 marks in all
    assert len(list(marks.iterdir())) - before < 10


def test_concurrent_compiles_take_turns_and_leave_no_lock_file(workdir):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sqlanon", "compile", RETAIL, "--out", "out"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert sorted(p.name for p in workdir.iterdir()) == ["examples", "out", "policies"]
    assert (workdir / "out/manifest.json").exists()


def test_an_incremental_compile_lowers_only_what_changed_and_writes_the_same_bytes(
    tmp_path, monkeypatch
):
    """The lowering cache (sqlanon/output/cache.py): after a one-table edit only that table is
    lowered again, and every byte equals a fresh compile's; a change to sqlanon itself (its
    digest) misses every entry; a cache that cannot be written is no error."""
    from sqlanon.output import cache as cache_module
    from sqlanon.output.cache import LowerCache
    from sqlanon.plan.build import build_plan
    from sqlanon.policy.load import load_policy
    from sqlanon.sql import dialect

    def policy(width: int) -> Path:
        tables = "\n".join(
            f"  t{i}:\n    source: raw.t{i}\n    target: anon.t{i}\n    columns:\n"
            f"      a: {{transform: mask_email}}\n"
            f"      b: {{transform: bucket, width: {width if i == 3 else i + 1}}}"
            for i in range(12)
        )
        release = (
            "releases:\n  r:\n    source: raw.t0\n    target: out.r\n    privacy_unit: a\n"
            "    epsilon: 1\n    group_by: {b: keep}\n    groups: {public: [1, 2]}\n"
            "    measures: {n: {agg: count_units}}\n"
            "budget: {epsilon: 1, delta: 0.00001}\n"
        )
        path = tmp_path / "p.yml"
        path.write_text(f"sqlanon: 1\nname: p\nkeys: {{table: k.k}}\ntables:\n{tables}\n{release}")
        return path

    def bytes_of(artifacts):  # type: ignore[no-untyped-def]
        return sorted((a.path, a.content) for a in artifacts)

    for name in ("duckdb", "bigquery"):
        d = dialect.get(name)
        store = LowerCache(tmp_path / f"cache-{name}")
        first = emit.build(build_plan([load_policy(policy(4))]), d, store)
        assert store.hits == 0
        edited = build_plan([load_policy(policy(7))])
        again = LowerCache(tmp_path / f"cache-{name}")
        incremental = emit.build(edited, d, again)
        assert again.hits == 12 + 11  # 11 unchanged views and the release; their entries
        assert bytes_of(incremental) == bytes_of(emit.build(edited, d))
        assert bytes_of(incremental) != bytes_of(first)

    # a new compile: every view's file and its manifest entry are read back, and the bytes
    # are a fresh compile's
    third = LowerCache(tmp_path / "cache-duckdb")
    d = dialect.get("duckdb")
    assert bytes_of(emit.build(edited, d, third)) == bytes_of(emit.build(edited, d))
    assert third.hits == 13 + 12  # 12 views and the release, and the 12 views' entries

    # sqlanon changed (a template, a transform): nothing is reused
    monkeypatch.setattr(cache_module, "tool_digest", lambda: "another version")
    other = LowerCache(tmp_path / "cache-duckdb")
    emit.build(build_plan([load_policy(policy(7))]), dialect.get("duckdb"), other)
    assert other.hits == 0
    assert [p.name for p in (tmp_path / "cache-duckdb" / "lowered").iterdir()] == [
        "another version"[:32]
    ]

    # a cache folder that cannot be created only costs time
    (tmp_path / "file").write_text("")
    broken = LowerCache(tmp_path / "file")
    plan = build_plan([load_policy(policy(7))])
    assert bytes_of(emit.build(plan, dialect.get("duckdb"), broken)) == bytes_of(
        emit.build(plan, dialect.get("duckdb"))
    )


def test_compile_uses_the_cache_unless_turned_off(workdir, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("SQLANON_CACHE_DIR", str(tmp_path / "c"))
    assert cli("compile", RETAIL, "--out", "one").exit_code == 0
    assert any((tmp_path / "c" / "lowered").rglob("*"))
    assert cli("compile", RETAIL, "--out", "two").exit_code == 0
    assert _snapshot(Path("one")) == _snapshot(Path("two"))
    monkeypatch.setenv("SQLANON_CACHE_DIR", "off")
    assert cli("compile", RETAIL, "--out", "three").exit_code == 0
    assert _snapshot(Path("one")) == _snapshot(Path("three"))


def test_an_unchanged_policy_is_not_planned_again_and_any_input_edit_is_seen(
    workdir, monkeypatch, tmp_path
):
    """The plan cache (sqlanon/output/cache.py): the same files give the cached plan; an edit
    to the policy, to a fragment it includes or to a hierarchy it reads plans afresh; an entry
    others could have written is ignored."""
    from sqlanon import api
    from sqlanon.output.cache import PlanCache

    paths = [RETAIL]
    fresh = api.plan(paths)
    first = PlanCache(tmp_path / "c")
    assert first.get(paths) is None
    first.put(paths, fresh)
    again = PlanCache(tmp_path / "c")
    assert again.get(paths) == fresh and again.hit
    assert oct((tmp_path / "c" / "plans").stat().st_mode & 0o777) == "0o700"
    for edited in ("policies/pii.yml", "examples/retail/hierarchies/occupation.csv", RETAIL):
        original = Path(edited).read_text()
        Path(edited).write_text(original + "\n")
        assert PlanCache(tmp_path / "c").get(paths) is None, edited
        Path(edited).write_text(original)
        assert PlanCache(tmp_path / "c").get(paths) == fresh
    (entry,) = [p for p in (tmp_path / "c" / "plans").rglob("*") if p.is_file()]
    entry.chmod(0o666)
    assert PlanCache(tmp_path / "c").get(paths) is None, "writable by others: ignored"
    assert PlanCache(tmp_path / "c").get(["examples/adult/policy.yml"]) is None


def test_a_manifest_column_line_is_reused_only_where_it_prints_the_same() -> None:
    """Column lineage lines are rendered once per distinct line (a large policy repeats its
    columns): parameters equal in Python but printed apart (10 and 10.0), a declared type,
    another key version each get their own line, the one rendering them afresh gives."""
    from sqlanon.output import manifest
    from sqlanon.plan.model import ColumnStep, KeyRef

    def fresh(c: ColumnStep) -> str:
        lineage = manifest.column_lineage(c)
        return json.dumps(lineage, ensure_ascii=False, separators=(", ", ": "))

    base = ColumnStep(
        output="age",
        sources=("age",),
        transform="bucket",
        params=(("width", 10),),
        input_type="integer",
        output_type="integer",
        privacy_class="quasi_identifier",
    )
    variants = [
        base,
        replace(base, params=(("width", 10.0),)),
        replace(base, type_declared=True),
        replace(base, transform="keep", params=()),
        replace(base, key=KeyRef("k", 1)),
        replace(base, key=KeyRef("k", 2)),
        replace(base, lookup=(("1", "a"),)),  # the pairs are not printed: the same line
    ]
    assert variants[0] == variants[1]  # equal as plan values, so a plain memo would mix them
    manifest._LINES.clear()
    for _ in range(2):  # rendered, then reused
        for c in variants:
            assert manifest._column_line(c) == fresh(c)
    assert len({fresh(c) for c in variants}) == 6


def test_each_dialect_is_lowered_whole_but_for_the_last_round():
    """A dialect cut into pieces is warmed up by every worker that takes one; with enough
    dialects for the workers each is lowered whole, and only the dialects that would leave a
    worker idle at the end are cut, one piece per worker; a lone dialect is cut finely."""
    assert [emit._pieces(i, 5, 2) for i in range(5)] == [1, 1, 1, 1, 2]
    assert [emit._pieces(i, 4, 2) for i in range(4)] == [1, 1, 1, 1]
    assert [emit._pieces(i, 5, 4) for i in range(5)] == [1, 1, 1, 1, 4]
    assert [emit._pieces(i, 3, 4) for i in range(3)] == [16, 16, 16]
    assert emit._pieces(0, 1, 2) == 8


def test_a_spool_that_fills_up_ends_the_compile_with_an_error(monkeypatch, tmp_path):
    """The workers leave their chunks in files (emit._spooled); a full disk, or a container's
    small /dev/shm, ends the compile with an error that says so — not a traceback, not a
    hang — and nothing is left in the spool."""
    import errno
    import pickle

    from sqlanon.sql import dialect

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(emit, "PARALLEL_MIN_VIEWS", 10)
    monkeypatch.setattr(emit, "_spool_parent", lambda: str(spool))
    monkeypatch.setattr(pickle, "dump", full)  # the forked workers inherit it
    plan = _lowering_plan(tmp_path)
    with pytest.raises(emit.LoweringFailed, match="No space left on device"):
        list(emit._lowered_views([(plan.views, dialect.get("duckdb"))] * 2))
    assert list(spool.iterdir()) == []
