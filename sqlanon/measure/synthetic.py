"""What a synthetic table keeps of its source (docs/synthetic.md#utility), measured from the
warehouse: the total-variation distance of every one- and two-way marginal between the
table's rows of one epoch and the source rows a refresh would use, and — for a target column
named on the command line — a model trained on the synthetic rows and tested on real ones.

The counts per combination of the columns are read (GROUP BY in the engine); the distances
are computed here. The model is scikit-learn's logistic regression on one-hot features,
trained on a sample of at most SAMPLE rows of each side (said in the report)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlanon.plan.model import SyntheticPlan
from sqlanon.review.conformance import canonical_value
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.synthetic import used_rows_query
from sqlanon.warehouse import live_types

SAMPLE = 20_000  # rows of each side the model sees
TEST_SHARE = 0.3  # of the real rows, held out to test on


@dataclass(frozen=True)
class PairDistance:
    columns: tuple[str, ...]
    distance: float  # total variation
    kept: bool  # a pair the structure declares (its joint distribution measured)


@dataclass(frozen=True)
class ModelScore:
    target: str
    positive: str  # the class whose probability is scored
    trained_on: str  # "synthetic" or "real"
    accuracy: float
    auc: float | None
    train_rows: int
    test_rows: int


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

    @property
    def checks(self) -> tuple[()]:
        return ()

    def mean(self, distances: tuple[PairDistance, ...]) -> float | None:
        return sum(p.distance for p in distances) / len(distances) if distances else None


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


def measure_synthetic(
    t: SyntheticPlan, d: Dialect, engine: Any, epoch: int | None, target: str | None = None
) -> SyntheticUtility:
    names = [a.name for a in t.attributes]
    real, synthetic, epoch = counts(t, d, engine, epoch)
    kept = {frozenset((p, c)) for p, c in t.edges}
    one = tuple(
        PairDistance((names[i],), _tvd(real, synthetic, (i,)), True) for i in range(len(names))
    )
    two = tuple(
        PairDistance((names[i], names[j]), _tvd(real, synthetic, (i, j)), frozenset((i, j)) in kept)
        for i, j in combinations(range(len(names)), 2)
    )
    models: tuple[ModelScore, ...] = ()
    note = ""
    if target is not None:
        models, note = _models(t, real, synthetic, target)
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


def _expand(
    counts: Counter[tuple[int, ...]], rng: random.Random, limit: int
) -> list[tuple[int, ...]]:
    rows = [key for key, n in sorted(counts.items()) for _ in range(n)]
    rng.shuffle(rows)
    return rows[:limit]


def _models(
    t: SyntheticPlan,
    real: Counter[tuple[int, ...]],
    synthetic: Counter[tuple[int, ...]],
    target: str,
) -> tuple[tuple[ModelScore, ...], str]:
    """Train on synthetic, test on real; and the ceiling: train on real, test on other real
    rows. A fixed seed, so the same counts give the same scores."""
    names = [a.name for a in t.attributes]
    if target not in names:
        raise ValueError(f"--target {target}: not a column of {t.target_name} ({', '.join(names)})")
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, roc_auc_score
        from sklearn.preprocessing import OneHotEncoder
    except ImportError:
        return (), "no model score: scikit-learn is not installed (pip install scikit-learn)"
    at = names.index(target)
    rng = random.Random(0)
    real_rows = _expand(real, rng, SAMPLE)
    cut = int(len(real_rows) * (1 - TEST_SHARE))
    train_real, test_real = real_rows[:cut], real_rows[cut:]
    train_syn = _expand(synthetic, rng, SAMPLE)
    domain = t.attributes[at].domain
    # the positive class: the rarer of the real rows' classes (salary >50K, a diagnosis)
    shares = Counter(r[at] for r in real_rows)
    positive = min(shares, key=lambda k: (shares[k], k)) if shares else 0

    def xy(rows: list[tuple[int, ...]]) -> tuple[list[list[int]], list[int]]:
        return [[v for i, v in enumerate(r) if i != at] for r in rows], [
            int(r[at] == positive) for r in rows
        ]

    out = []
    x_test, y_test = xy(test_real)
    for label, rows in (("synthetic", train_syn), ("real", train_real)):
        x, y = xy(rows)
        if not x or not x_test or len(set(y)) < 2:
            continue
        encoder = OneHotEncoder(handle_unknown="ignore")
        model = LogisticRegression(max_iter=2000)
        model.fit(encoder.fit_transform(x), y)
        xt = encoder.transform(x_test)
        auc = roc_auc_score(y_test, model.predict_proba(xt)[:, 1]) if len(set(y_test)) > 1 else None
        out.append(
            ModelScore(
                target,
                domain[positive],
                label,
                float(accuracy_score(y_test, model.predict(xt))),
                None if auc is None else float(auc),
                len(rows),
                len(test_real),
            )
        )
    note = (
        f"logistic regression on one-hot columns predicting {target} = {domain[positive]}, "
        f"trained on at most {SAMPLE:,} rows of each, tested on {len(test_real):,} source rows "
        f"the real-trained model did not see ({int(TEST_SHARE * 100)} % of a sample of the "
        "source; its score is the ceiling). The synthetic table was drawn from every source "
        "row, these included: hold rows out of the source to test on unseen ones"
    )
    return tuple(out), note


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
    t: SyntheticPlan, d: Dialect, engine: Any, epoch: int | None = None
) -> SyntheticRisk:
    """Distance to the closest source record in columns that differ (0, 1, 2 or more), from
    the combinations' counts: exact matches by lookup, one column off by the source's
    combinations with each column in turn left out."""
    real, synthetic, epoch = counts(t, d, engine, epoch)
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
