"""A policy read in two processes (sqlanon/plan/split.py) plans exactly what a whole read
plans, or declines so that the whole read runs and reports: errors that only show across the
two shares (a key's two purposes, a version of a key no table uses, a target written twice)
are never missed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import REPO

from sqlanon.output.cache import PlanCache
from sqlanon.plan import split
from sqlanon.plan.build import build_plan
from sqlanon.plan.incremental import parts_of
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policies, load_policy


@pytest.fixture(autouse=True)
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split, "MIN_TABLES", 2)


def generated(tables: int, extra: dict[int, str] | None = None, header: str = "") -> str:
    """`tables` tables; `extra` adds lines to some of them."""
    lines = ["sqlanon: 1", "name: split", "keys: {table: privacy.sqlanon_keys" + header + "}"]
    lines.append("tables:")
    for t in range(tables):
        lines += [f"  t{t}:", f"    source: raw.t{t}", f"    target: anon.t{t}", "    columns:"]
        lines += ["      id: {transform: pseudonymize, key: customer, length: 16}"]
        lines += ["      email: mask_email", "      age: {transform: bucket, width: 10}"]
        lines += (extra or {}).get(t, "").splitlines()
    return "\n".join(lines) + "\n"


def assert_as_whole(path: Path) -> None:
    found = split.split_plan([str(path)])
    assert found is not None
    plan, parts = found
    whole = build_plan(load_policies([str(path)]))
    assert plan == whole
    assert parts == parts_of([load_policy(path)], whole, [path.read_bytes()])


def test_the_retail_example_plans_as_a_whole_read_does():
    assert_as_whole(REPO / "examples" / "retail" / "policy.yml")


def test_a_key_versioned_in_the_header_and_used_by_one_late_table(tmp_path):
    """The first share has no use of `late`: its version is not an error there, and the
    whole policy's check sees the use."""
    path = tmp_path / "policy.yml"
    late = "      ref: {transform: pseudonymize, key: late, length: 16}"
    path.write_text(generated(9, {8: late}, header=", versions: {late: 3}"))
    assert_as_whole(path)
    plan, _ = split.split_plan([str(path)])  # type: ignore[misc]
    assert [c.key.version for c in plan.views[8].columns if c.key and c.key.name == "late"] == [3]


def test_a_big_generated_policy(tmp_path):
    path = tmp_path / "policy.yml"
    path.write_text(generated(40))
    assert_as_whole(path)


@pytest.mark.parametrize(
    "case",
    ["two purposes across the shares", "an unused key version", "a target written twice"],
)
def test_errors_across_the_shares_are_left_to_the_whole_read(tmp_path, case):
    path = tmp_path / "policy.yml"
    if case == "two purposes across the shares":  # t1 is in the first share, t8 the other
        pseudonym = "      ref: {transform: pseudonymize, key: shared, length: 16}"
        sample = "    sample: {unit: id, fraction: 0.5, key: shared}"
        text = generated(9, {1: pseudonym, 8: sample})
    elif case == "an unused key version":
        text = generated(9, header=", versions: {nobody: 2}")
    else:
        text = generated(9).replace("target: anon.t8", "target: anon.T1")
    path.write_text(text)
    assert split.split_plan([str(path)]) is None
    with pytest.raises(PolicyError):
        load_policies([str(path)])


def test_an_error_in_the_forked_share_is_left_to_the_whole_read(tmp_path):
    path = tmp_path / "policy.yml"
    path.write_text(generated(9, {7: "      bad: {transform: bucket}"}))
    assert split.split_plan([str(path)]) is None
    with pytest.raises(PolicyError) as raised:
        load_policies([str(path)])
    assert "column 'bad'" in raised.value.render()


def test_several_files_uncuttable_text_or_few_tables_are_read_whole(tmp_path):
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text(generated(4))
    b.write_text(generated(4).replace("name: split", "name: other").replace("anon.", "b."))
    assert split.split_plan([str(a), str(b)]) is None
    c = tmp_path / "c.yml"
    c.write_text(generated(4).replace("  t1:", "  t1: &anchor"))
    assert split.split_plan([str(c)]) is None
    a.write_text(generated(2))
    assert split.split_plan([str(a)]) is None


def test_an_edit_after_a_split_compile_is_planned_incrementally_and_equal(tmp_path, cli):
    """The plan cache keeps the split read's parts; an edit then re-reads one table, and
    the output equals a fresh compile's."""
    path = tmp_path / "policy.yml"
    path.write_text(generated(12))
    cache = tmp_path / "cache"
    env = {"SQLANON_CACHE_DIR": str(cache)}
    assert cli("compile", str(path), "--out", str(tmp_path / "out"), env=env).exit_code == 0
    path.write_text(generated(12).replace("width: 10}", "width: 20}", 1))
    plans = PlanCache(cache)
    again = plans.get([str(path)])
    assert plans.replanned == 1
    assert again == build_plan(load_policies([str(path)]))
    assert cli("compile", str(path), "--out", str(tmp_path / "out"), env=env).exit_code == 0
    fresh = {"SQLANON_CACHE_DIR": "off"}
    check = cli("compile", str(path), "--out", str(tmp_path / "out"), "--check", env=fresh)
    assert check.exit_code == 0, check.output


def _dies_when_forked(lo: int, hi: int):  # type: ignore[no-untyped-def]
    if lo != 1:  # the forked reader's share
        os._exit(9)
    return _REAL_READ(lo, hi)


_REAL_READ = split._read_share


def test_a_reader_that_dies_leaves_the_policy_to_the_whole_read(tmp_path, monkeypatch):
    """The forked reader killed (say, out of memory): no hang, the whole read runs."""
    path = tmp_path / "policy.yml"
    path.write_text(generated(9))
    monkeypatch.setattr(split, "_read_share", _dies_when_forked)
    assert split.split_plan([str(path)]) is None


def test_equal_steps_are_one_object_whichever_process_read_them(tmp_path):
    """The column memo compares steps by identity first (sqlanon/plan/model.py: shared_step):
    the forked share's steps, and a plan read back from the cache, are the objects this
    process already holds — and a step's kept hash never leaves the process (another
    interpreter hashes strings differently)."""
    import pickle
    import subprocess
    import sys

    path = tmp_path / "policy.yml"
    path.write_text(generated(40))
    plan, _ = split.split_plan([str(path)])  # type: ignore[misc]
    first, last = plan.views[1].columns, plan.views[-1].columns  # one from each share
    assert all(a is b for a, b in zip(first, last, strict=True))
    assert len({id(c) for v in plan.views for c in v.columns}) == 3
    store = PlanCache(tmp_path / "cache")
    store.put([str(path)], plan, parts=split.split_plan([str(path)])[1])  # type: ignore[index]
    again = store.get([str(path)])
    assert again is not None and again.views[5].columns[0] is first[0]

    hash(first[0])  # kept now
    blob = pickle.dumps(first)
    assert b"_hash" not in blob
    script = (
        "import pickle, sys\n"
        "from sqlanon.plan.model import ColumnStep, _values\n"
        "steps = pickle.loads(sys.stdin.buffer.read())\n"
        "assert all(hash(s) == hash(_values(s)) for s in steps)\n"
        "assert {s: 1 for s in steps}[ColumnStep(*_values(steps[0]))] == 1\n"
    )
    for seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-c", script],
            input=blob,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )


@pytest.mark.parametrize("case", ["split", "split with an error", "read whole", "cached"])
def test_the_callers_work_runs_once_while_the_forked_process_reads(tmp_path, case):
    """`sqlanon compile` loads its dialects while the forked process reads its (larger) share;
    every other way to a plan (or to the error) runs that work once too."""
    import multiprocessing

    from sqlanon import api

    path = tmp_path / "policy.yml"
    text = generated(40, {30: "      bad: {transform: bucket}"} if "error" in case else None)
    path.write_text(generated(1) if case == "read whole" else text)
    store = PlanCache(tmp_path / "cache") if case == "cached" else None
    if store is not None:
        api.plan_files([str(path)], store)
    alive: list[bool] = []
    if "error" in case:
        with pytest.raises(PolicyError):
            api.plan_files([str(path)], store, lambda: alive.append(True))
        assert alive == [True]
        return
    plan = api.plan_files(
        [str(path)], store, lambda: alive.append(bool(multiprocessing.active_children()))
    )
    assert alive == [case == "split"]
    assert plan == build_plan(load_policies([str(path)]))


def test_a_steps_kept_repr_is_the_dataclass_repr():
    """A view's digest is its repr's, so ColumnStep's kept repr (sqlanon/plan/model.py) must
    be the text a plain dataclass of the same fields gives."""
    import dataclasses
    from typing import Any

    from sqlanon.plan.model import ColumnStep, _values

    plan = build_plan(load_policies([str(REPO / "examples" / "retail" / "policy.yml")]))
    twin = dataclasses.make_dataclass(
        "ColumnStep",
        [(f.name, Any, dataclasses.field(repr=f.repr)) for f in dataclasses.fields(ColumnStep)],
        frozen=True,
    )
    for step in {c for v in plan.views for c in v.columns}:
        assert repr(step) == repr(twin(*_values(step)))
        assert repr(step) is repr(step)  # kept
