"""What the releases may spend (the policy's budget) against what the warehouse's ledger says
they spent, per epoch. Each refresh appends a ledger row and draws fresh noise, so a release
refreshed twice in one epoch is two releases and counts twice; the refresh itself refuses to
run past the budget unless allowed (docs/dp.md#budget-and-ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlanon.plan.model import Plan, ReleasePlan, SyntheticPlan
from sqlanon.sql.dialect import Dialect


@dataclass(frozen=True)
class Planned:
    """One refresh of a policy's releases, as compiled."""

    policy: str
    releases: tuple[tuple[str, Fraction, Fraction], ...]  # (release, ε, δ)
    epsilon: Fraction
    delta: Fraction
    budget_epsilon: Fraction
    budget_delta: Fraction


@dataclass(frozen=True)
class Spent:
    """What the ledger recorded for one policy in one epoch."""

    epoch: int
    policy: str
    refreshes: tuple[tuple[str, int], ...]  # (release, times refreshed)
    epsilon: float
    delta: float
    budget_epsilon: float | None  # None: a policy not among those compiled
    budget_delta: float | None

    @property
    def over(self) -> bool:
        if self.budget_epsilon is None or self.budget_delta is None:
            return False
        slack = 1e-12  # the ledger stores floats: sums of decimal ε may round up
        return self.epsilon > self.budget_epsilon + slack or self.delta > self.budget_delta + slack


def planned(plan: Plan) -> list[Planned]:
    out = []
    for b in plan.budgets:
        every: list[ReleasePlan | SyntheticPlan] = [*plan.releases, *plan.synthetic]
        mine = [r for r in every if r.policy == b.policy]
        out.append(
            Planned(
                b.policy,
                tuple((r.name, r.epsilon, r.delta) for r in mine),
                sum((r.epsilon for r in mine), Fraction(0)),
                sum((r.delta for r in mine), Fraction(0)),
                b.epsilon,
                b.delta,
            )
        )
    return out


def spent(plan: Plan, d: Dialect, engine) -> list[Spent]:  # type: ignore[no-untyped-def]
    """Per ledger relation of the plan, its rows summed per epoch and policy."""
    budgets = {b.policy: b for b in plan.budgets}
    groups: dict[tuple[int, str], list[tuple[str, int, float, float]]] = {}
    for table in plan.ledgers:
        sql = d.statement("ledger_summary", d.relation(table)).text
        for epoch, policy, release, times, eps, delta in engine.query(sql):
            groups.setdefault((int(epoch), str(policy)), []).append(
                (str(release), int(times), float(eps), float(delta))
            )
    out = []
    for (epoch, policy), rows in sorted(groups.items()):
        b = budgets.get(policy)
        out.append(
            Spent(
                epoch,
                policy,
                tuple((r, n) for r, n, _, _ in rows),
                sum(e for _, _, e, _ in rows),
                sum(x for _, _, _, x in rows),
                float(b.epsilon) if b else None,
                float(b.delta) if b else None,
            )
        )
    return out
