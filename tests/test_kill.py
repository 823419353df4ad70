"""Nothing lost: a compile killed with SIGKILL at any point of writing its output leaves the
complete old output or the complete new one, never a mix; the next compile recovers; files
sqlanon did not write survive every kill."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlanon.output import emit, files
from sqlanon.output import write as output_write
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.sql import dialect

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and SIGKILL")

TABLES = 48  # one file per view, plus the manifest: over 50 steps to kill at
USER_FILE = "NOTES.md"  # not sqlanon's: must survive everything


def policy_text(width: int) -> str:
    tables = "".join(
        f"  t{i}:\n    source: raw.t{i}\n    target: anon.t{i}\n"
        f"    columns:\n      id: keep\n      n: {{transform: bucket, width: {width}}}\n"
        for i in range(TABLES)
    )
    return f"sqlanon: 1\nname: kill\ntables:\n{tables}"


def artifacts(tmp_path: Path, width: int) -> list[files.Artifact]:
    path = tmp_path / f"policy-{width}.yml"
    path.write_text(policy_text(width))
    return emit.build(build_plan(load_policies([str(path)])), dialect.get("duckdb"))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory when the machine has one: each write fsyncs every file, and this
    test writes thousands; the atomicity it checks does not depend on the medium."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sqlanon-kill-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def _killed_write(out: Path, new: list[files.Artifact], at: int) -> int:
    """output_write.write in a forked child that SIGKILLs itself just before its `at`-th file-system
    step (0: never); returns how many steps it reached."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        steps = 0

        def step(fn):  # type: ignore[no-untyped-def]
            def wrapped(*a, **k):  # type: ignore[no-untyped-def]
                nonlocal steps
                steps += 1
                os.write(write, b".")
                if steps == at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*a, **k)

            return wrapped

        os.fsync = step(os.fsync)
        os.rename = step(os.rename)
        os.replace = step(os.replace)
        shutil.rmtree = step(shutil.rmtree)
        output_write._exchange = step(output_write._exchange)
        output_write._put = step(output_write._put)
        output_write._durable = step(output_write._durable)
        Path.rename = step(Path.rename)
        Path.mkdir = step(Path.mkdir)
        try:
            output_write.write(out, new)
        finally:
            os._exit(0)
    os.close(write)
    reached = 0
    while chunk := os.read(read, 4096):
        reached += len(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed == (at > 0 and reached >= at), (at, reached, status)
    return reached


def test_sigkill_at_every_step_leaves_old_or_new(tmp_path: Path, scratch: Path) -> None:
    old, new = artifacts(tmp_path, 10), artifacts(tmp_path, 20)
    tmp_path = scratch
    out = tmp_path / "out"
    output_write.write(out, old)
    (out / USER_FILE).write_text("mine\n")
    old_files = {**{a.path: a.content for a in old}, USER_FILE: b"mine\n"}
    new_files = {**{a.path: a.content for a in new}, USER_FILE: b"mine\n"}

    steps = _killed_write(out, new, at=0)  # a clean run: how many steps a write takes
    assert snapshot(out) == new_files
    assert steps > 50, steps
    seen = {"old": 0, "new": 0}
    for at in range(1, steps + 1):
        # start from the old output each time (this write also recovers from the last kill)
        output_write.write(out, old)
        assert snapshot(out) == old_files
        _killed_write(out, new, at)
        state = snapshot(out)
        assert state in (old_files, new_files), f"killed at step {at}: a mixed output"
        seen["old" if state == old_files else "new"] += 1
        # the next compile finishes the job and leaves nothing behind
        output_write.write(out, new)
        assert snapshot(out) == new_files
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".sqlanon-")]
        assert leftovers == [], leftovers
    assert seen["old"] > 0 and seen["new"] > 0, seen  # kills landed on both sides of the swap
    print(f"\nkill points: {steps}, old {seen['old']}, new {seen['new']}")


def test_sigkill_of_the_cli_at_random_times(tmp_path: Path) -> None:
    """The real command, killed at random moments of its run (import, planning, writing)."""
    out = tmp_path / "out"
    policies = []
    for width in (10, 20):
        path = tmp_path / f"p{width}.yml"
        path.write_text(policy_text(width))
        policies.append(path)
    command = [sys.executable, "-m", "sqlanon", "compile", "--out", str(out)]
    subprocess.run([*command, str(policies[0])], check=True, capture_output=True)
    expected = [snapshot(out)]
    started = time.perf_counter()
    subprocess.run([*command, str(policies[1])], check=True, capture_output=True)
    duration = time.perf_counter() - started
    expected.append(snapshot(out))
    rng = random.Random(7)
    for i in range(12):
        proc = subprocess.Popen([*command, str(policies[i % 2])], stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert snapshot(out) in expected, f"run {i}: a mixed output"


def test_ctrl_c_of_the_cli_at_several_moments(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: the compile, its forked policy
    reader and its lowering workers. At every moment (reading, lowering, writing) it ends at
    once with exit code 130 and a message saying what it left, no process stays behind, and
    every folder it left is complete: a full compile's files, byte for byte."""
    lines = ["sqlanon: 1", "name: ctrlc", "keys: {table: privacy.keys}", "tables:"]
    for t in range(240):  # enough tables for the two-process read and the workers
        lines += [f"  t{t}:", f"    source: raw.t{t}", f"    target: anon.t{t}", "    columns:"]
        lines += ["      id: {transform: pseudonymize, key: k, length: 16}"]
        lines += [f"      c{c}: {{transform: bucket, width: {c + 2}}}" for c in range(12)]
    policy = tmp_path / "policy.yml"
    policy.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "SQLANON_CACHE_DIR": "off"}  # every run lowers everything

    def command(out: Path) -> list[str]:
        compile_ = [sys.executable, "-m", "sqlanon", "compile", str(policy)]
        return [*compile_, "--dialect", "all", "--out", str(out)]

    started = time.perf_counter()
    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True, env=env)
    duration = time.perf_counter() - started
    whole = {d.name: snapshot(d) for d in (tmp_path / "whole").iterdir()}
    for i, moment in enumerate((0.1, 0.3, 0.5, 0.65, 0.8, 0.9)):
        out = tmp_path / f"out{i}"
        proc = subprocess.Popen(
            command(out),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # a group of its own, as a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        time.sleep(moment * duration)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"Ctrl-C at {moment:.0%} of the run hung")
        left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
        assert not left.stdout.split(), f"processes left at {moment:.0%}: {left.stdout}"
        if proc.returncode == 0:
            continue  # the run ended before the signal
        if proc.returncode == -signal.SIGINT:
            # ended by the signal itself (what a shell also reports as 130): the interrupt
            # landed while the interpreter started, before any of sqlanon ran — never a traceback
            assert stderr in ("", "interrupted\n"), stderr
        else:
            assert proc.returncode == 130, stderr
            assert stderr.startswith("interrupted") and stderr.count("interrupted") == 1, stderr
        folders = list(out.iterdir()) if out.exists() else []
        for folder in folders:
            assert snapshot(folder) == whole[folder.name], f"{folder.name} half written"
        written = {line.split()[1].rstrip(":") for line in stdout.splitlines()}
        assert written <= {str(f) for f in folders}  # each folder it reported written is there


def test_any_command_interrupted_says_so() -> None:
    """typer ends a command that Ctrl-C interrupted with code 130 and no word; sqlanon's entry
    point adds the line every interrupted command prints."""
    script = (
        "import sys\n"
        "from sqlanon.cli.app import app, main\n"
        "def slow() -> None:\n"
        "    raise KeyboardInterrupt\n"
        "app.command('slow')(slow)\n"
        "sys.argv = ['sqlanon', 'slow']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 130
    assert done.stderr == "interrupted\n"
