"""The noise of a release, decided at compile time and written into the SQL as constants.

Every noisy value is `granularity × (round(true / granularity) + Z)` where Z is two-sided
geometric (discrete Laplace) noise, P(Z = z) ∝ p^|z| with p = exp(-ε·granularity / Δ), Δ the
L1 sensitivity. Counts use granularity 1. Sums use a power of two (planner: about 1/1024 of
the per-group bound), so the released value never carries low-order bits of the true value
(Mironov's floating-point attack on Laplace noise; Google's "secure noise generation" note).
The SQL draws Z from two 52-bit uniforms of a keyed hash: Z = G₁ − G₂ with Gᵢ = ⌊ln uᵢ / ln p⌋;
the hashed message names the refresh's nonce, never the data (docs/dp.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

CONFIDENCE = Fraction(95, 100)


@dataclass(frozen=True)
class DiscreteLaplace:
    """Noise Z on the integers with P(Z = z) = (1 − p)/(1 + p) · p^|z|."""

    epsilon: Fraction  # the ε this noise spends
    sensitivity: Fraction  # L1 sensitivity, in units of the granularity

    @cached_property
    def p(self) -> float:
        return math.exp(self.ln_p)

    @cached_property
    def ln_p(self) -> float:
        return -float(self.epsilon / self.sensitivity)

    def pmf(self, z: int) -> float:
        p = self.p
        return (1 - p) / (1 + p) * p ** abs(z)

    def tail(self, t: int) -> float:
        """P(Z ≥ t) for t ≥ 1 (and P(Z ≤ −t) by symmetry)."""
        # exp(t·ln p), not p**t: for a tiny ε, p rounds to a float near 1 whose powers drift
        return math.exp(t * self.ln_p) / (1 + self.p)

    def half_width(self, confidence: Fraction = CONFIDENCE) -> int:
        """The smallest c with P(|Z| ≤ c) ≥ confidence."""
        alpha = float(1 - confidence)
        # closed form for 2·p^(c+1)/(1+p) ≤ alpha, then stepped to the exact smallest c (a scan
        # from 0 would take ~1/ε steps: a hang for a tiny ε)
        c = max(0, math.ceil(math.log(alpha * (1 + self.p) / 2) / self.ln_p) - 1)
        while 2 * self.tail(c + 1) > alpha:
            c += 1
        while c > 0 and 2 * self.tail(c) <= alpha:
            c -= 1
        return c

    def threshold(self, delta: float) -> int:
        """The smallest t ≥ 1 with P(Z ≥ t) ≤ delta."""
        if delta <= 0:
            raise ValueError("a noisy threshold needs delta > 0")
        t = max(1, math.ceil(math.log(delta * (1 + self.p)) / self.ln_p))
        while self.tail(t) > delta:
            t += 1
        while t > 1 and self.tail(t - 1) <= delta:
            t -= 1
        return t

    def rows_threshold(self, delta: float, rows: int) -> tuple[int, float]:
        """(t, the chance one such group appears) for a selection by the noisy count of bounded
        rows, where one unit adds at most `rows` rows over all groups (docs/dp.md#groups-public-
        or-thresholded). A group that unit alone creates holds c of its rows (1 ≤ c ≤ rows) and
        appears when c + Z > t, with chance tail(t − c + 1) = tail(t)·q^(c−1), q = 1/p (valid
        for c ≤ t, hence t ≥ rows). Over its groups the chances add up to tail(t)·Σ q^(c−1),
        a convex sum under Σ c ≤ rows: largest with every row in one group (q^(rows−1)) or
        each in its own (rows). So t is the smallest t ≥ rows with tail(t)·W ≤ delta,
        W = max(rows, q^(rows−1)); then all the groups one unit creates appear with total
        chance ≤ delta, as with the unit count's threshold."""
        q_rows = math.exp(-(rows - 1) * self.ln_p)  # q^(rows−1): all its rows in one group
        t = max(rows, self.threshold(delta / max(float(rows), q_rows)))
        return t, q_rows * self.tail(t)


def on_grid(value: Fraction, g: Fraction) -> int:
    """A value in grid units, rounded half up: ⌊value/g + ½⌋ — what the release SQL computes
    for each row's clamped measure input (exact in floating point: g is a power of two)."""
    return math.floor(value / g + Fraction(1, 2))


def float_steps(x: float, center: float, g: Fraction) -> int:
    """⌊(x − center)/g + ½⌋ as the release SQL computes it: in IEEE doubles, as every engine
    does (no subtraction when the center is 0). It can differ from on_grid by one step where
    a bound or center has no exact double, which is why the plan compares the two at the
    clamp's ends (sqlanon/sql/releases.py: _input_steps)."""
    y = x - center if center else x
    return math.floor(y / float(g) + 0.5)


def granularity(scale: float) -> Fraction:
    """A power of two between scale/2048 and scale/1024."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    return Fraction(2) ** (math.floor(math.log2(scale)) - 10)


def power_of_two_at_most(x: Fraction) -> Fraction:
    """The largest power of two ≤ x (x > 0), exactly."""
    if x <= 0:
        raise ValueError("x must be positive")
    p = Fraction(2) ** math.floor(math.log2(float(x)))
    while p > x:
        p /= 2
    while p * 2 <= x:
        p *= 2
    return p
