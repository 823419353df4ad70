"""compile_scale: a generated policy of 1,000 tables × 50 columns, compiled for each dialect.

    python benchmarks/compile_scale.py [--tables 1000] [--columns 50]

Prints the time of each phase, the time per column, and the whole compile as a ratio of the
floor no compiler can beat: PyYAML (with libyaml) merely parsing the same file.
Targets (issue 2): ≤ 2.5 s for DuckDB alone; ≤ 10 s for 4 dialects once they exist.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sqlanon import api
from sqlanon.output import emit, manifest
from sqlanon.output import write as output_write
from sqlanon.output.cache import LowerCache, PlanCache
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import codecache, dialect

# A realistic mix: most columns kept or dropped, the rest transformed.
COLUMN_KINDS = [
    "keep",
    "keep",
    "keep",
    "keep",
    "keep",
    "keep",
    "keep",
    "keep",
    "drop",
    "drop",
    "{transform: pseudonymize, key: customer, length: 16, type: integer}",
    "{transform: mask_email}",
    "{transform: mask, keep_last: 4}",
    "{transform: truncate_date, to: month}",
    "{transform: bucket, width: 10, min: 0, max: 100}",
    "{transform: prefix, length: 3}",
    "{transform: nullify}",
    "{transform: generalize, hierarchy: {a: [x, '*'], b: [x, '*'], c: [y, '*']}, level: 1}",
    "{transform: age, as_of: 2026-01-01, edges: [18, 25, 35, 50, 65]}",
    "{transform: constant, value: REDACTED}",
]


def generate(tables: int, columns: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["sqlanon: 1", "name: scale", "keys: {table: privacy.sqlanon_keys}", "tables:"]
    for t in range(tables):
        lines += [
            f"  t{t}:",
            f"    source: raw.t{t}",
            f"    target: anon.t{t}",
            "    grants: [analyst]",
            "    columns:",
        ]
        lines += [
            "      c0: {transform: bucket, width: 10}",  # the quasi-identifiers
            "      c1: {transform: prefix, length: 3}",
        ]
        for c in range(2, columns):
            lines.append(f"      c{c}: {rng.choice(COLUMN_KINDS)}")
        if t % 4 == 0:
            lines += ["    k_anonymity: {quasi_identifiers: [c0, c1], k: 5}"]
    return "\n".join(lines) + "\n"


def timed(fn):  # type: ignore[no-untyped-def]
    """Time fn as `sqlanon compile` runs it: with the cycle collector paused."""
    gc.disable()
    t = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - t
    gc.enable()
    return value, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, default=1000)
    ap.add_argument("--columns", type=int, default=50)
    args = ap.parse_args()
    n_columns = args.tables * args.columns
    # removed at the very end, not before the incremental compiles: ext4 without a journal (this
    # VM's disk) checks every inode freed in the last 30 s before it reuses one, and the fresh
    # compiles that followed this section's clean-up created their 5,000 files 1-3 s slower
    # (perf: `recently_deleted` in ext4_create, a fifth of the CPU)
    tmp = tempfile.mkdtemp()
    path = Path(tmp) / "policy.yml"
    path.write_text(generate(args.tables, args.columns))
    size = path.stat().st_size
    # in a function: its plan and files are no longer held when the compiles below are timed
    # as in a new process (a larger heap makes forking the workers dearer)
    t_yaml, t_load, t_plan, t_split, rows = phases(path, Path(tmp))
    total_front = t_split
    print(
        f"\ncompile_scale: {args.tables:,} tables × {args.columns} columns = {n_columns:,} "
        f"columns; policy {size / 1e6:.1f} MB"
    )
    print(f"{'phase':32} {'seconds':>8} {'µs/column':>10}")
    print(f"{'PyYAML compose (the floor)':32} {t_yaml:8.2f} {1e6 * t_yaml / n_columns:10.1f}")
    print(f"{'load + validate':32} {t_load:8.2f} {1e6 * t_load / n_columns:10.1f}")
    print(f"{'plan':32} {t_plan:8.2f} {1e6 * t_plan / n_columns:10.1f}")
    print(f"{'  both, in two processes':32} {t_split:8.2f} {1e6 * t_split / n_columns:10.1f}")
    all_dialects = total_front
    for name, t_lower, t_write, files, nbytes in rows:
        print(f"{'lower ' + name:32} {t_lower:8.2f} {1e6 * t_lower / n_columns:10.1f}")
        print(
            f"{'write ' + name + f' ({files} files, {nbytes / 1e6:.0f} MB)':32} "
            f"{t_write:8.2f} {1e6 * t_write / n_columns:10.1f}"
        )
        all_dialects += t_lower + t_write
    duck = next(r for r in rows if r[0] == "duckdb")
    t_duck = total_front + duck[1] + duck[2]
    print(
        f"\nDuckDB alone: {t_duck:.2f} s ({1e6 * t_duck / n_columns:.0f} µs/column; "
        f"target ≤ 2.5 s) = {t_duck / t_yaml:.1f}× the YAML parse"
    )
    print(f"all {len(rows)} dialect(s): {all_dialects:.2f} s (target ≤ 10 s for 4 dialects)")
    try:
        incremental(args.tables, args.columns)
    finally:
        shutil.rmtree(tmp)


def phases(
    path: Path, tmp: Path
) -> tuple[float, float, float, float, list[tuple[str, float, float, int, int]]]:
    """Each phase of a compile timed alone: the YAML floor, load, plan, both in two
    processes, and each dialect's lowering and write."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _, t_yaml = timed(lambda: yaml.compose(path.read_text(), Loader=loader))
    policy, t_load = timed(lambda: load_policy(path))
    plan, t_plan = timed(lambda: build_plan([policy]))
    _, t_split = timed(lambda: api.plan_files([str(path)]))
    rows = []
    for name in dialect.available():
        d, t_dialect = timed(lambda n=name: dialect.get(n))
        artifacts, t_lower = timed(lambda d=d: emit.build(plan, d))
        out = tmp / name
        _, t_write = timed(lambda out=out, a=artifacts: output_write.write(out, a))
        rows.append(
            (
                name,
                t_dialect + t_lower,
                t_write,
                len(artifacts),
                sum(len(a.content) for a in artifacts),
            )
        )
    return t_yaml, t_load, t_plan, t_split, rows


def new_process() -> None:
    """Forget the loaded dialects and compiled templates: each `sqlanon compile` is a new
    process, which loads its dialects (until 2026-12-03 this script timed compiles with them
    already loaded, 0.4 s per dialect short of what the CLI paid)."""
    dialect.get.cache_clear()
    codecache._LOADED.clear()
    manifest._LINES.clear()  # the manifest's column lines, rendered once per process
    emit._MEMOS.clear()


def compile_to(
    path: Path, names: list[str], store: LowerCache | None, out: Path, plans: PlanCache | None
) -> float:
    """Seconds for what `sqlanon compile` does in its process: load, plan (or read an
    unchanged policy's plan back), load the dialects, lower (with the cache), write."""

    new_process()
    # the compiled templates are kept in the same cache as the lowered files (or not at all)
    os.environ["SQLANON_CACHE_DIR"] = "off" if store is None else str(store.base.parent)

    def run() -> None:
        # as the CLI does: read back, re-read in part, or read in two processes, loading the
        # dialects meanwhile
        targets: list[dialect.Dialect] = []
        plan = api.plan_files([str(path)], plans, lambda: targets.extend(map(dialect.get, names)))
        # as the CLI does: one dialect is written while the next one's views are lowered
        for d, artifacts in emit.build_each(plan, targets, store):
            output_write.write(out / d.name, artifacts)

    return timed(run)[1]


def incremental(tables: int, columns: int) -> None:
    """Issue 17: a compile after a one-table edit, and of an unchanged policy, with the
    lowering cache (sqlanon/output/cache.py) warm, against a fresh compile."""
    print("\nincremental compile (the lowering cache), seconds")
    print(f"{'':34} {'DuckDB':>8} {'all dialects':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yml"
        text = generate(tables, columns)
        path.write_text(text)
        results: dict[str, list[float]] = {}
        for names in (["duckdb"], list(dialect.available())):
            store = LowerCache(Path(tmp) / f"cache{len(names)}")
            plans = PlanCache(Path(tmp) / f"cache{len(names)}")
            out = Path(tmp) / f"out{len(names)}"
            path.write_text(text)
            fresh = compile_to(path, names, None, Path(tmp) / f"fresh{len(names)}", None)
            cold = compile_to(path, names, store, out, plans)
            unchanged = compile_to(path, names, store, out, plans)
            # one table edited: its first quasi-identifier gets wider buckets
            edited = text.replace(
                "      c0: {transform: bucket, width: 10}",
                "      c0: {transform: bucket, width: 20}",
                1,
            )
            path.write_text(edited)
            one_edit = compile_to(path, names, store, out, plans)
            assert store.hits >= 2 * (tables - 1)
            assert plans.replanned == 1  # the edited table alone was read again
            edited_plan = build_plan([load_policy(path)])
            for name in names:  # byte for byte the fresh compile's
                artifacts = emit.build(edited_plan, dialect.get(name))
                assert output_write.check(out / name, artifacts).ok
            for label, t in (
                ("fresh, no cache", fresh),
                ("fresh, filling the cache", cold),
                ("unchanged policy", unchanged),
                ("one table edited", one_edit),
            ):
                results.setdefault(label, []).append(t)
            results.setdefault("  its files written by plain open/write", []).append(
                file_floor(Path(tmp) / f"fresh{len(names)}", Path(tmp) / f"floor{len(names)}")
            )
        path.write_text(text)
        for label, times in cli_runs(path, Path(tmp)).items():
            results[label] = times
        for label, (duck, every) in results.items():
            print(f"{label:34} {duck:8.2f} {every:13.2f}")


def file_floor(done: Path, out: Path) -> float:
    """Seconds to write a compile's files again with nothing but open() and write(): what
    creating that many files costs on this disk (on this VM, 0.04-1.1 ms a file by the hour)."""
    files = {p.relative_to(done): p.read_bytes() for p in done.rglob("*") if p.is_file()}

    def run() -> None:
        for rel, content in files.items():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(content)

    return timed(run)[1]


def cli_runs(path: Path, tmp: Path) -> dict[str, list[float]]:
    """The same compiles as a user runs them: `sqlanon compile` in a new process each time
    (interpreter start, imports and dialect loading included)."""
    out: dict[str, list[float]] = {}
    edited = path.read_text().replace(
        "      c0: {transform: bucket, width: 10}", "      c0: {transform: bucket, width: 20}", 1
    )
    for which in ("duckdb", "all"):
        original = path.read_text()
        cache = tmp / f"cli-cache-{which}"
        for label, text, env in (
            ("CLI: fresh, no cache", original, "off"),
            ("CLI: fresh, filling the cache", original, str(cache)),
            ("CLI: unchanged policy", original, str(cache)),
            ("CLI: one table edited", edited, str(cache)),
        ):
            path.write_text(text)
            folder = tmp / f"cli-{which}-{'fresh' if env == 'off' else 'cached'}"
            command = [sys.executable, "-m", "sqlanon", "compile", str(path)]
            command += ["--dialect", which, "--out", str(folder)]
            start = time.perf_counter()
            subprocess.run(
                command,
                check=True,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "SQLANON_CACHE_DIR": env},
            )
            out.setdefault(label, []).append(time.perf_counter() - start)
        path.write_text(original)
    return out


if __name__ == "__main__":
    main()
