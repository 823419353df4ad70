"""What a synthetic table keeps of its source (docs/synthetic.md#utility), measured from the
warehouse: the total-variation distance of every one- and two-way marginal between the
table's rows of one epoch and the source rows a refresh would use, and — for a target column
named on the command line — a model trained on the synthetic rows and tested on real ones.

The counts per combination of the columns are read (GROUP BY in the engine); the distances
are computed here. The model is sqlanon/measure/models.py's, as for views."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlanon.measure.models import ModelScore, scores
from sqlanon.measure.utility import CheckResult, verdict
from sqlanon.plan.model import SyntheticPlan
from sqlanon.review.conformance import canonical_value
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.synthetic import setup_statements, tree_pairs, tree_query, used_rows_query
from sqlanon.warehouse import live_types


@dataclass(frozen=True)
class PairDistance:
    columns: tuple[str, ...]
    distance: float  # total variation
    kept: bool  # a pair the structure declares or (auto) the epoch's refresh chose


@dataclass(frozen=True)
class SyntheticUtility:
    table: str
    epoch: int | None
    source_rows: int  # rows with every attribute in its domain
    rows: int  # the table's rows in the epoch
    epsilon: float
    one_way: tuple[PairDistance, ...]
    two_way: tuple[PairDistance, ...]
    models: tuple[ModelScore, ...] = ()
    model_note: str = ""
    chosen: tuple[str, ...] = ()  # auto: the pairs the epoch's refresh chose, as `a × b`
    checks: tuple[CheckResult, ...] = ()  # the policy's declared checks (gating)

    def mean(self, distances: tuple[PairDistance, ...]) -> float | None:
        return sum(p.distance for p in distances) / len(distances) if distances else None

    def summary(
        self,
    ) -> list[tuple[str, tuple[PairDistance, ...], float | None, PairDistance | None]]:
        """(label, marginals, mean distance, the worst) for single columns, the pairs the
        structure keeps and the other pairs: what the reports show."""
        kept = tuple(p for p in self.two_way if p.kept)
        other = tuple(p for p in self.two_way if not p.kept)
        return [
            (label, group, self.mean(group), max(group, key=lambda p: p.distance, default=None))
            for label, group in (
                ("one column", self.one_way),
                ("pairs kept (structure)", kept),
                ("other pairs", other),
            )
        ]


def counts(
    t: SyntheticPlan, d: Dialect, engine: Any, epoch: int | None
) -> tuple[Counter[tuple[int, ...]], Counter[tuple[int, ...]], int | None]:
    """(the source's rows, the table's rows of `epoch` — by default the latest), each as a
    count per combination of domain positions; the epoch read (None: no refresh yet)."""
    names = [a.name for a in t.attributes]
    attrs = [d.ident(f"_sqlanon_a{i}") for i in range(len(names))]
    real: Counter[tuple[int, ...]] = Counter()
    sql = d.statement("utility_combinations", used_rows_query(t, d), attrs).text
    for row in engine.query(sql):
        real[tuple(int(v) for v in row[:-1])] += int(row[-1])
    synthetic: Counter[tuple[int, ...]] = Counter()
    relation = d.relation(t.target)
    if not live_types(engine, t.target):
        epoch = None  # no refresh has made the table yet
    elif epoch is None:
        latest = engine.query(d.statement("max_epoch", relation).text)[0][0]
        epoch = None if latest is None else int(latest)
    if epoch is not None:
        position = [{v: k for k, v in enumerate(a.domain)} for a in t.attributes]
        columns = [d.ident(n) for n in names]
        sql = d.statement("utility_epoch_combinations", relation, columns, d.number(epoch)).text
        for row in engine.query(sql):
            key = tuple(
                position[i].get(str(canonical_value(v)), -1) for i, v in enumerate(row[:-1])
            )
            synthetic[key] += int(row[-1])
    return real, synthetic, epoch


def chosen_pairs(t: SyntheticPlan, d: Dialect, engine: Any, epoch: int) -> set[frozenset[int]]:
    """`structure: auto`: the pairs the refresh of `epoch` chose, recomputed with its nonce
    (from the ledger) and the noise key: the choice is post-processing of the private
    mechanism, so showing it costs nothing. Raises if the key or the ledger is not readable."""
    sql = d.statement("epoch_nonce", d.relation(t.ledger), d.string(t.target_name), d.number(epoch))
    found = engine.query(sql.text)
    if not found or found[0][0] is None:
        raise LookupError(f"no ledger row for epoch {epoch} of {t.target_name}")
    for statement in setup_statements(t, d):
        engine.execute(statement.text)
    tree = tree_query(t, d, d.number(epoch), d.string(str(found[0][0])))
    (row,) = engine.query(d.statement("select_query", tree).text)
    return set(tree_pairs(row, len(t.attributes)))


Counted = tuple[Counter[tuple[int, ...]], Counter[tuple[int, ...]], int | None]


def measure_synthetic(
    t: SyntheticPlan,
    d: Dialect,
    engine: Any,
    epoch: int | None,
    target: str | None = None,
    counted: Counted | None = None,
) -> SyntheticUtility:
    """`counted`: what counts() returned for this epoch, when the caller has it already."""
    names = [a.name for a in t.attributes]
    real, synthetic, epoch = counted or counts(t, d, engine, epoch)
    kept = {frozenset((p, c)) for p, c in t.edges}
    note = ""
    if t.auto and epoch is not None:
        try:
            kept = chosen_pairs(t, d, engine, epoch)
        except Exception as err:  # the reader may not hold the key: report without it
            note = f"the pairs epoch {epoch} chose are not known here ({err})"
    one = tuple(
        PairDistance((names[i],), _tvd(real, synthetic, (i,)), True) for i in range(len(names))
    )
    two = tuple(
        PairDistance((names[i], names[j]), _tvd(real, synthetic, (i, j)), frozenset((i, j)) in kept)
        for i, j in combinations(range(len(names)), 2)
    )
    models: tuple[ModelScore, ...] = ()
    if target is not None:
        models, model_note = _models(t, real, synthetic, target)
        note = "; ".join(x for x in (note, model_note) if x)
    distances = {p.columns: p.distance for p in (*one, *two)}
    checks = tuple(
        verdict(
            u, distances.get(u.refs, distances.get(u.refs[::-1])) if epoch is not None else None
        )
        for u in t.utility
    )
    return SyntheticUtility(
        t.target_name,
        epoch,
        sum(real.values()),
        sum(synthetic.values()),
        float(t.epsilon),
        one,
        two,
        models,
        note,
        tuple(" × ".join(p.columns) for p in two if p.kept) if t.auto else (),
        checks,
    )


def _tvd(a: Counter[tuple[int, ...]], b: Counter[tuple[int, ...]], at: tuple[int, ...]) -> float:
    """Half the L1 distance of the two shares over the columns `at` (1 when a side is empty)."""
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return 1.0
    pa: Counter[tuple[int, ...]] = Counter()
    pb: Counter[tuple[int, ...]] = Counter()
    for key, n in a.items():
        pa[tuple(key[i] for i in at)] += n
    for key, n in b.items():
        pb[tuple(key[i] for i in at)] += n
    return 0.5 * sum(abs(pa[k] / na - pb[k] / nb) for k in pa.keys() | pb.keys())


def _models(
    t: SyntheticPlan,
    real: Counter[tuple[int, ...]],
    synthetic: Counter[tuple[int, ...]],
    target: str,
) -> tuple[tuple[ModelScore, ...], str]:
    """Train on synthetic, test on real; and the ceiling: train on real, test on other real
    rows (sqlanon/measure/models.py), each side in the table's values."""
    names = [a.name for a in t.attributes]
    if target not in names:
        raise ValueError(f"--target {target}: not a column of {t.target_name} ({', '.join(names)})")

    def texts(counts: Counter[tuple[int, ...]]) -> Counter[tuple[Any, ...]]:
        out: Counter[tuple[Any, ...]] = Counter()
        for key, n in counts.items():
            out[
                tuple(t.attributes[i].domain[v] if v >= 0 else None for i, v in enumerate(key))
            ] += n
        return out

    found, note, _ = scores(
        target, names.index(target), ("synthetic", texts(synthetic)), texts(real)
    )
    if found:
        note += (
            ". The synthetic table was drawn from every source row, these included: hold rows "
            "out of the source to test on unseen ones"
        )
    return found, note


@dataclass(frozen=True)
class SyntheticRisk:
    """A sanity check, not a privacy proof (the DP guarantee is): how close the table's rows
    come to the source's, over all its columns (each a quasi-identifier)."""

    table: str
    epoch: int | None
    rows: int
    columns: tuple[str, ...]
    exact: float | None  # share of rows equal to some source row on every column
    exact_unique: float | None  # … to a source row no other source row equals
    one_off: float | None  # share of rows one column away from the closest source row
    farther: float | None  # two or more columns away

    @property
    def ok(self) -> bool:
        return True  # reported, never gating: the guarantee is ε


def measure_synthetic_risk(
    t: SyntheticPlan,
    d: Dialect,
    engine: Any,
    epoch: int | None = None,
    counted: Counted | None = None,
) -> SyntheticRisk:
    """Distance to the closest source record in columns that differ (0, 1, 2 or more), from
    the combinations' counts (`counted`: counts()'s, when the caller has them): exact matches
    by lookup, one column off by the source's combinations with each column in turn left
    out."""
    real, synthetic, epoch = counted or counts(t, d, engine, epoch)
    width = len(t.attributes)
    dropped = [{k[:i] + k[i + 1 :] for k in real} for i in range(width)]
    total = sum(synthetic.values())
    exact = unique = one = 0
    for key, n in synthetic.items():
        if key in real:
            exact += n
            unique += n if real[key] == 1 else 0
        elif any(key[:i] + key[i + 1 :] in dropped[i] for i in range(width)):
            one += n

    def share(x: int) -> float | None:
        return x / total if total else None

    return SyntheticRisk(
        t.target_name,
        epoch,
        total,
        tuple(a.name for a in t.attributes),
        share(exact),
        share(unique),
        share(one),
        share(total - exact - one),
    )
