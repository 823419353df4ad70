"""Running a compiled plan on a live engine and reporting what it did to each table."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .dialect import Dialect
from .dp.lower import ledger_statements, release_statements
from .lower import key_table_statements, view_query, view_statements
from .plan import Plan, ReleasePlan, ViewPlan


class SourceError(Exception):
    """The live source does not match the policy in a way the policy forbids."""


@dataclass(frozen=True)
class ViewReport:
    target: str
    source_rows: int
    kept_rows: int  # after retention and sampling, before k-anonymity's suppression
    view_rows: int
    k: int | None = None
    action: str | None = None
    rows_below_k: int | None = None  # before suppression
    smallest_class: int | None = None  # in the view as created (None when it is empty)

    @property
    def suppressed(self) -> int:
        return self.kept_rows - self.view_rows

    @property
    def k_ok(self) -> bool:
        return self.k is None or self.smallest_class is None or self.smallest_class >= self.k


def unsuppressed(view: ViewPlan) -> ViewPlan:
    """The same view without k-anonymity's suppression (for measuring it)."""
    if view.k_anonymity is None:
        return view
    return replace(view, k_anonymity=replace(view.k_anonymity, action="fail"))


def create_key_tables(plan: Plan, dialect: Dialect, engine) -> None:  # type: ignore[no-untyped-def]
    for table in plan.key_tables:
        for s in key_table_statements(table, dialect):
            engine.execute(s.text)


def create(plan: Plan, dialect: Dialect, engine) -> None:  # type: ignore[no-untyped-def]
    """Create the key relations (if missing) and every view of the plan."""
    create_key_tables(plan, dialect, engine)
    for view in plan.views:
        check_unlisted(view, engine)
        _create_schema(view.target, dialect, engine)
        for s in view_statements(view, dialect):
            engine.execute(s.text)


def check_unlisted(view: ViewPlan, engine) -> None:  # type: ignore[no-untyped-def]
    if view.unlisted_columns != "error":
        return
    listed = {s for c in view.columns for s in c.sources}
    live = [name for name, _ in engine.columns(view.source)]
    unlisted = [n for n in live if n not in listed]
    if unlisted:
        raise SourceError(
            f"{'.'.join(view.source)} has columns the policy does not name "
            f"({', '.join(unlisted)}) and `unlisted_columns: error` is set"
        )


def report(plan: Plan, dialect: Dialect, engine) -> list[ViewReport]:  # type: ignore[no-untyped-def]
    d = dialect

    def count(sql: str) -> int:
        return int(engine.query(sql)[0][0] or 0)

    out = []
    for view in plan.views:
        query = view_query(unsuppressed(view), d)
        r = ViewReport(
            ".".join(view.target),
            source_rows=count(d.statement("count_relation", d.relation(view.source)).text),
            kept_rows=count(d.statement("count_rows", query).text),
            view_rows=count(d.statement("count_relation", d.relation(view.target)).text),
        )
        k = view.k_anonymity
        if k:
            qi = [d.ident(q) for q in k.quasi_identifiers]
            before = engine.query(d.statement("class_summary", query, qi, d.number(k.k)).text)
            as_built = d.statement("select_all", d.relation(view.target))
            after = engine.query(d.statement("class_summary", as_built, qi, d.number(k.k)).text)
            r = replace(
                r,
                k=k.k,
                action=k.action,
                rows_below_k=int(before[0][2] or 0),
                smallest_class=after[0][0],
            )
        out.append(r)
    return out


@dataclass(frozen=True)
class ReleaseReport:
    target: str
    epoch: int
    groups: int  # released this epoch
    epsilon: float
    delta: float


def refresh(plan: Plan, dialect: Dialect, engine, epoch: int) -> list[ReleaseReport]:  # type: ignore[no-untyped-def]
    """Refresh every release for `epoch` with the same statements as the compiled files (the
    epoch set as a session setting), after creating the ledger(s)."""
    d = dialect
    for table in plan.ledgers:
        for s in ledger_statements(table, d):
            engine.execute(s.text)
    engine.set_epoch(epoch)
    out = []
    for r in plan.releases:
        _create_schema(r.target, d, engine)
        run_release(r, d, engine)
        out.append(
            ReleaseReport(
                ".".join(r.target),
                epoch,
                groups=_released_groups(r, d, engine, epoch),
                epsilon=float(r.epsilon),
                delta=float(r.delta),
            )
        )
    return out


def run_release(r: ReleasePlan, d: Dialect, engine) -> None:  # type: ignore[no-untyped-def]
    """The release file's statements; a failure rolls its transaction back, leaving the
    epoch's earlier rows and the ledger as they were."""
    begun = False
    try:
        for s in release_statements(r, d):
            begun = begun or s.text == d.statement("begin").text
            engine.execute(s.text)
    except Exception:
        if begun:
            engine.execute(d.statement("rollback").text)
        raise


def _released_groups(r: ReleasePlan, d: Dialect, engine, epoch: int) -> int:  # type: ignore[no-untyped-def]
    where = d.prim("eq", d.ident("epoch"), d.number(epoch))
    return int(engine.query(d.statement("count_where", d.relation(r.target), where).text)[0][0])


def _create_schema(target: tuple[str, ...], d: Dialect, engine) -> None:  # type: ignore[no-untyped-def]
    if len(target) > 1:
        engine.execute(d.statement("create_schema", d.relation(target[:-1])).text)
