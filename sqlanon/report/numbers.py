"""How every report writes a number, in one place: a figure reads the same in the terminal,
the markdown and HTML reports, the demo and the CLI's one-line errors (issue 15)."""

from __future__ import annotations

from decimal import Decimal

MISSING = "—"  # a figure that could not be measured


def count(n: int | None) -> str:
    """Rows, classes, groups: grouped by thousands (12,345)."""
    return MISSING if n is None else f"{n:,}"


def figure(x: float | Decimal | None, digits: int = 4) -> str:
    """A measured value: `digits` significant digits, whole and grouped once it has more
    integer digits than that (a distance 0.1432, a mean 41.38, a sum 1,234,567)."""
    if x is None or x != x:  # NaN: a correlation of a constant column, say
        return MISSING
    x = float(x)
    return f"{x:,.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def share(x: float | None, decimals: int = 2) -> str:
    """A proportion as a percentage: 0.1234 → 12.34 %."""
    return MISSING if x is None else f"{100 * x:.{decimals}f} %"


def fixed(x: float | None, decimals: int) -> str:
    """A score compared across rows of one table, with the same decimals in every row."""
    return MISSING if x is None else f"{x:.{decimals}f}"


def parameter(x: float | Decimal) -> str:
    """A declared parameter (ε, δ, a limit) as short as it was written: 0.1, 1e-06."""
    return f"{float(x):g}"


def constant(x: object) -> str:
    """A compile-time constant as a reviewer reads it: exact when a short whole number, else
    4 significant digits."""
    f = float(x)  # type: ignore[arg-type]
    return str(int(f)) if f == int(f) and abs(f) < 1e15 else f"{f:.4g}"


def amount(x: float | Decimal) -> str:
    """A value shown as data (an average order in the demo): one decimal below 1,000, whole
    and grouped above."""
    f = float(x)
    return f"{f:,.1f}" if abs(f) < 1000 else f"{f:,.0f}"
