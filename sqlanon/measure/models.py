"""Train on released rows, test on real ones (docs/utility.md#a-model-trained-on-the-output):
the article's predictive-performance check, the same for a view, a synthetic table and the
raw data, so a reviewer compares them on one task.

A logistic regression on one-hot columns (scikit-learn, an optional dependency: the `ml`
extra) predicting one class of a target column; each side read as counts per combination of
its columns and expanded to at most SAMPLE rows, shuffled with a fixed seed."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

SAMPLE = 20_000  # rows of each side a model sees
TEST_SHARE = 0.3  # of the real rows, held out to test on
Rows = Counter[tuple[Any, ...]]


@dataclass(frozen=True)
class ModelScore:
    target: str
    positive: str  # the class whose probability is scored
    trained_on: str  # "synthetic", "view" or "real"
    accuracy: float
    auc: float | None
    train_rows: int
    test_rows: int


MISSING_SKLEARN = "no model score: scikit-learn is not installed (pip install 'sqlanon[ml]')"


def expand(counts: Rows, rng: random.Random, limit: int = SAMPLE) -> list[tuple[Any, ...]]:
    rows = [key for key, n in sorted(counts.items(), key=repr) for _ in range(n)]
    rng.shuffle(rows)
    return rows[:limit]


def scores(
    target: str,
    at: int,
    released: tuple[str, Rows],
    real: Rows,
    raw: Rows | None = None,
) -> tuple[tuple[ModelScore, ...], str, int]:
    """Models predicting column `at` (of every side: the same columns, in the released
    representation) trained on `released` and on real rows, both tested on the held-out real
    rows; with `raw` (the source's own values, same order of columns), the ceiling is trained
    and tested on those instead. Returns the scores, a note of what was done, and how many real
    rows were tested on."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, roc_auc_score
        from sklearn.preprocessing import OneHotEncoder
    except ImportError:
        return (), MISSING_SKLEARN, 0
    rng = random.Random(0)
    label, released_counts = released
    # the positive class: the real rows' rarer one (salary >50K, a diagnosis)
    shares: Counter[Any] = Counter()
    for k, n in real.items():
        shares[k[at]] += n
    if len(shares) < 2:
        return (), f"no model score: {target} has one value in the source", 0
    positive = min(shares, key=lambda v: (shares[v], repr(v)))

    def xy(rows: list[tuple[Any, ...]]) -> tuple[list[list[str]], list[int]]:
        x = [[str(v) for i, v in enumerate(r) if i != at] for r in rows]
        return x, [int(r[at] == positive) for r in rows]

    def split(counts: Rows) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rows = expand(counts, random.Random(1))
        cut = int(len(rows) * (1 - TEST_SHARE))
        return rows[:cut], rows[cut:]

    train_real, test_real = split(real)
    sides = [(label, expand(released_counts, rng), test_real)]
    if raw is not None:
        train_raw, test_raw = split(raw)
        sides.append(("real", train_raw, test_raw))
    else:
        sides.append(("real", train_real, test_real))
    out = []
    for name, train, test in sides:
        x, y = xy(train)
        x_test, y_test = xy(test)
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
                str(positive),
                name,
                float(accuracy_score(y_test, model.predict(xt))),
                None if auc is None else float(auc),
                len(train),
                len(test),
            )
        )
    note = (
        f"logistic regression on one-hot columns predicting {target} = {positive}, trained on "
        f"at most {SAMPLE:,} rows of each side, tested on {len(test_real):,} real rows the "
        f"real-trained model did not see ({int(TEST_SHARE * 100)} % of a sample of the "
        "source; its score is the ceiling)"
    )
    return tuple(out), note, len(test_real)
