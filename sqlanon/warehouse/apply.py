"""Running a compiled plan on a live engine and reporting what it did to each table."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlanon.plan.model import Plan, ReleasePlan, SyntheticPlan, ViewPlan, source_label
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.query import source_sql
from sqlanon.sql.releases import BUDGET_SLACK, REFUSED, ledger_statements, release_statements
from sqlanon.sql.synthetic import synthetic_statements
from sqlanon.sql.views import key_table_statements, view_query, view_statements
from sqlanon.warehouse.sources import source_columns


class SourceError(Exception):
    """The live source does not match the policy in a way the policy forbids."""


class CommittedThenFailed(Exception):
    """A refresh committed its rows and its ledger row, then a later statement (a grant where
    grants cannot share the transaction) failed: do not re-run it, it would be charged again."""


class RefreshRefused(Exception):
    """The refresh's own SQL refused to run (over the budget, or a target another release
    writes): its transaction was rolled back and nothing was written."""


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


class DeployError(Exception):
    """Views could not be replaced. Where the engine has transactional DDL the message says
    that nothing was changed: the deploy's transaction was rolled back."""


LOCK_TIMEOUT_MS = 5000
# PostgreSQL's refusals of CREATE OR REPLACE VIEW for a view whose columns changed other than
# by appending: the view has to be dropped and created again
_REPLACE_REFUSED = ("cannot drop columns from view", "cannot change name of view column",
                    "cannot change data type of view column")  # fmt: skip


def create(  # type: ignore[no-untyped-def]
    plan: Plan, dialect: Dialect, engine, lock_timeout_ms: int = LOCK_TIMEOUT_MS
) -> None:
    """Create the key relations (if missing) and every view of the plan. Where DDL is
    transactional (DuckDB, PostgreSQL) all views are replaced in one transaction — readers see
    the old views or the new ones, never a mix (a key rotation's joins never come up empty) —
    waiting at most `lock_timeout_ms` for a lock (PostgreSQL) so a long analyst query makes the
    deploy fail rather than queue every new reader behind it. A view whose columns were removed,
    renamed or retyped is dropped and created again in that transaction, never with CASCADE:
    when other objects depend on it the deploy stops and names them."""
    create_key_tables(plan, dialect, engine)
    for view in plan.views:
        check_unlisted(view, engine)
    if not dialect.features.transactional_ddl:
        for view in plan.views:
            for s in view_statements(view, dialect):
                engine.execute(s.text)
        return
    dropped: set[tuple[str, ...]] = set()
    while True:
        try:
            _replace_views(plan, dialect, engine, lock_timeout_ms, dropped)
            return
        except _Replace as again:
            dropped.add(again.target)


class _Replace(Exception):
    def __init__(self, target: tuple[str, ...]):
        self.target = target


def _replace_views(  # type: ignore[no-untyped-def]
    plan: Plan, d: Dialect, engine, lock_timeout_ms: int, dropped: set[tuple[str, ...]]
) -> None:
    engine.execute(d.statement("begin").text)
    current: ViewPlan | None = None
    try:
        if d.features.lock_table:
            engine.execute(d.statement("set_lock_timeout", d.number(lock_timeout_ms)).text)
        for view in plan.views:
            current = view
            if view.target in dropped:
                engine.execute(d.statement("drop_view", d.relation(view.target)).text)
            for s in view_statements(view, d):
                engine.execute(s.text)
        engine.execute(d.statement("commit").text)
    except Exception as exc:
        engine.execute(d.statement("rollback").text)
        text = str(exc)
        where = ".".join(current.target) if current else "the views"
        replaceable = current is not None and current.target not in dropped
        if replaceable and any(r in text for r in _REPLACE_REFUSED):
            assert current is not None
            raise _Replace(current.target) from None
        if "depend on it" in text:
            detail = getattr(getattr(exc, "diag", None), "message_detail", None) or ""
            raise DeployError(
                f"{where}: its columns changed, so the view must be dropped and created again, "
                f"but other objects depend on it ({' '.join(detail.split())}); sqlanon never "
                "drops with CASCADE: change or drop them first. Nothing was changed (the "
                "deploy's transaction was rolled back)."
            ) from None
        if "lock timeout" in text:
            raise DeployError(
                f"{where}: waited {lock_timeout_ms / 1000:g} s for a lock on it (a long query "
                "reading it?) and gave up, so that readers are not queued behind the deploy. "
                "Nothing was changed (the deploy's transaction was rolled back); try again."
            ) from None
        raise  # the engine's own error (a missing source, say): rolled back, reported as such


def check_unlisted(view: ViewPlan, engine) -> None:  # type: ignore[no-untyped-def]
    if view.unlisted_columns != "error":
        return
    listed = {s for c in view.columns for s in c.sources}
    live = [name for name, _ in source_columns(engine, view.source)]
    unlisted = [n for n in live if n not in listed]
    if unlisted:
        raise SourceError(
            f"{source_label(view.source)} has columns the policy does not name "
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
            source_rows=count(d.statement("count_relation", source_sql(view.source, d)).text),
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
    groups: int  # released this epoch (a synthetic table's rows)
    epsilon: float
    delta: float
    kind: str = "release"


def refresh(  # type: ignore[no-untyped-def]
    plan: Plan, dialect: Dialect, engine, epoch: int, allow_overspend: bool = False
) -> list[ReleaseReport]:
    """Refresh every release for `epoch` with the same statements as the compiled files (the
    epoch set as a session setting), after creating the ledger(s). With allow_overspend the
    budget check is lifted for these refreshes, and their ledger rows say so."""
    d = dialect
    for table in plan.ledgers:
        for s in ledger_statements(table, d):
            engine.execute(s.text)
    if not allow_overspend:
        check_budget(plan, d, engine, epoch)
    engine.set_epoch(epoch)
    out = []
    objects: list[ReleasePlan | SyntheticPlan] = [*plan.releases, *plan.synthetic]
    for r in objects:
        run_release(r, d, engine, allow_overspend)
        out.append(
            ReleaseReport(
                ".".join(r.target),
                epoch,
                groups=_released_groups(r, d, engine, epoch),
                epsilon=float(r.epsilon),
                delta=float(r.delta),
                kind="synthetic" if isinstance(r, SyntheticPlan) else "release",
            )
        )
    return out


def check_budget(plan: Plan, d: Dialect, engine, epoch: int) -> None:  # type: ignore[no-untyped-def]
    """Refuse, before anything is written, a refresh of all the plan's releases that would
    take a policy's spend in this epoch over its budget (each release's SQL checks its own
    refresh again; this keeps a refresh from stopping half-way)."""
    from sqlanon.warehouse.budget import planned, spent

    already = {s.policy: s for s in spent(plan, d, engine) if s.epoch == epoch}
    for p in planned(plan):
        before = already.get(p.policy)
        eps = (before.epsilon if before else 0.0) + float(p.epsilon)
        delta = (before.delta if before else 0.0) + float(p.delta)
        slack = float(BUDGET_SLACK)
        if eps > float(p.budget_epsilon) + slack or delta > float(p.budget_delta) + slack:
            raise RefreshRefused(
                f"{REFUSED}: refreshing the releases of policy '{p.policy}' for epoch {epoch} "
                f"would spend epsilon {eps:g} and delta {delta:g} in that epoch, over its budget "
                f"(epsilon {float(p.budget_epsilon):g}, delta {float(p.budget_delta):g}); "
                "nothing was written"
            )


def run_release(  # type: ignore[no-untyped-def]
    r: ReleasePlan | SyntheticPlan, d: Dialect, engine, allow_overspend: bool = False
) -> None:
    """The release file's statements; a failure rolls its transaction back, leaving the
    epoch's earlier rows and the ledger as they were."""
    begun = committed = False
    begin, commit = d.statement("begin").text, d.statement("commit").text
    try:
        statements = (
            synthetic_statements(r, d, allow_overspend=allow_overspend)
            if isinstance(r, SyntheticPlan)
            else release_statements(r, d, allow_overspend=allow_overspend)
        )
        for s in statements:
            engine.execute(s.text)
            begun = begun or s.text == begin
            committed = committed or s.text == commit
    except Exception as exc:
        if committed:
            raise CommittedThenFailed(
                f"the refresh of {r.target_name} was committed (its rows and its ledger row), "
                f"then failed: {str(exc).strip()}. Do not re-run it: a re-run is a new release "
                "and is charged again; fix the cause (a grant?) and grant by hand."
            ) from exc
        if begun:
            engine.execute(d.statement("rollback").text)
        refused = _refusal(str(exc))
        if refused:
            raise RefreshRefused(refused) from None
        raise


def _refusal(error: str) -> str | None:
    """The refresh SQL's own refusal, cut out of the engine's error text (each engine wraps
    the message differently)."""
    at = error.find(REFUSED)
    if at < 0:
        return None
    text = error[at:]
    for end in ('"', "\n"):
        if end in text:
            text = text[: text.index(end)]
    return text.strip()


def _released_groups(r: ReleasePlan | SyntheticPlan, d: Dialect, engine, epoch: int) -> int:  # type: ignore[no-untyped-def]
    where = d.prim("eq", d.ident("epoch"), d.number(epoch))
    return int(engine.query(d.statement("count_where", d.relation(r.target), where).text)[0][0])
