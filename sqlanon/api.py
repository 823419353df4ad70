"""The Python API: load → plan → build, then write or check — what `sqlanon compile` does,
for scripts and tests that want the objects rather than a terminal.

    from sqlanon import api
    plan = api.plan(api.load(["policy.yml"]))
    report = api.write(plan, "build", dialect="postgres")

Errors are exceptions that carry their own rendering: `PolicyError` (located policy
mistakes; `.render()`), `DialectError` (a dialect cannot express what the plan asks),
`LoweringFailed` (a process lowering views died; nothing was written).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Literal

from sqlanon.output import dbt, emit
from sqlanon.output import write as output_write
from sqlanon.output.cache import LowerCache, PlanCache
from sqlanon.output.emit import LoweringFailed
from sqlanon.output.files import Artifact
from sqlanon.output.write import CheckReport
from sqlanon.plan.build import build_plan
from sqlanon.plan.model import Plan
from sqlanon.plan.split import split_plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policies
from sqlanon.policy.model import PolicySpec
from sqlanon.sql import dialect as dialects
from sqlanon.sql.dialect import Dialect, DialectError

Format = Literal["sql", "dbt"]

__all__ = [
    "Artifact",
    "CheckReport",
    "Dialect",
    "DialectError",
    "LoweringFailed",
    "Plan",
    "PolicyError",
    "PolicySpec",
    "build",
    "check",
    "get_dialect",
    "load",
    "plan",
    "plan_files",
    "write",
]


def load(paths: Sequence[str | Path]) -> list[PolicySpec]:
    """Policies from files or folders (fragments skipped), every error at once."""
    return load_policies([str(p) for p in paths])


def plan(policies: Sequence[PolicySpec] | Sequence[str | Path]) -> Plan:
    """The immutable plan of policies, or of the policy files and folders named."""
    specs = [p for p in policies if isinstance(p, PolicySpec)]
    if len(specs) != len(policies):
        specs = load([p for p in policies if not isinstance(p, PolicySpec)]) + specs
    return build_plan(specs)


def plan_files(
    paths: Sequence[str | Path],
    cache: PlanCache | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Plan:
    """The plan of the policy files and folders named, as `sqlanon compile` makes it: read
    back from `cache` while none of its files changed (sqlanon/output/cache.py), else read — a
    large policy by two processes at once (sqlanon/plan/split.py) — and stored in `cache`.
    `meanwhile`, the caller's own work (the CLI loads its dialects), runs once: while the
    forked process reads its share of a large policy, else first."""
    names = [str(p) for p in paths]
    ran = False

    def once() -> None:
        nonlocal ran
        if meanwhile is not None and not ran:
            ran = True
            meanwhile()

    if cache is not None and (cached := cache.get(names)) is not None:
        once()
        return cached
    split = split_plan(names, once if meanwhile is not None else None)
    if split is not None:
        found, parts = split
        if cache is not None:
            cache.put(names, found, parts=parts)
        return found
    once()
    specs = load(names)
    found = build_plan(specs)
    if cache is not None:
        cache.put(names, found, specs)
    return found


def get_dialect(name: str | Dialect) -> Dialect:
    """A dialect by name or common alias (postgresql, bq, …)."""
    if isinstance(name, Dialect):
        return name
    found = dialects.aliases().get(name.lower())
    if found is None:
        known = ", ".join(dialects.available())
        raise DialectError(f"unknown dialect '{name}'; expected one of {known}")
    return dialects.get(found)


def build(
    plan: Plan,
    dialect: str | Dialect = "duckdb",
    format: Format = "sql",
    cache: LowerCache | None = None,
) -> list[Artifact]:
    """The output files (SQL files and manifest, or a dbt project) as bytes, in memory; with
    `cache` (LowerCache.default(): what `sqlanon compile` uses), objects an earlier compile
    lowered are reused — the same bytes, sqlanon/output/cache.py."""
    d = get_dialect(dialect)
    return dbt.build(plan, d) if format == "dbt" else emit.build(plan, d, cache)


def build_each(
    plan: Plan,
    dialects: Sequence[str | Dialect],
    format: Format = "sql",
    cache: LowerCache | None = None,
) -> Generator[tuple[Dialect, list[Artifact]], None, None]:
    """`build` for several dialects, each one's files as soon as they are complete (its views
    are lowered while the caller writes the previous dialect's: `compile --dialect all`)."""
    targets = [get_dialect(d) for d in dialects]
    if format == "dbt":
        for d in targets:
            yield d, dbt.build(plan, d)
    else:
        yield from emit.build_each(plan, targets, cache)


def write(
    plan: Plan, out: str | Path, dialect: str | Dialect = "duckdb", format: Format = "sql"
) -> CheckReport:
    """Write the output folder atomically; the report lists what changed."""
    return output_write.write(Path(out), build(plan, dialect, format))


def check(
    plan: Plan, out: str | Path, dialect: str | Dialect = "duckdb", format: Format = "sql"
) -> CheckReport:
    """Compare the output folder with what would be written; `.ok` when up to date."""
    return output_write.check(Path(out), build(plan, dialect, format))
