"""The canonical text of a value (docs/transforms.md#canonical-text), computed in Python.

The dialects spell the same contract in SQL (`canonical_text`); this is the reference they
are tested against, and what the compiler uses for values written in a policy (public groups
of a release), so that `1` and `1.0` of a float column are one group, as the engine sees it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation

from sqlanon.plan.types import BOOLEAN, DATE, DECIMAL, FLOAT, INTEGER, TEXT, TIMESTAMP, TIMESTAMPTZ

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FLOAT_WORDS = {"nan": "nan", "inf": "inf", "+inf": "inf", "-inf": "-inf"}


class NotOfType(ValueError):
    """Policy text that is not a value of the type (the message says what was expected)."""


def of_text(text: str, type_: str) -> str:
    """The canonical text of the value `text` spells as a literal of `type_`."""
    if type_ == TEXT:
        return text
    s = text.strip()
    if type_ == INTEGER:
        if _INTEGER.fullmatch(s):
            return str(int(s))
        if _DECIMAL.fullmatch(s) and Decimal(s) == Decimal(s).to_integral_value():
            return str(int(Decimal(s)))
        raise NotOfType("an integer such as 42")
    if type_ == DECIMAL:
        if not _DECIMAL.fullmatch(s):
            raise NotOfType("a decimal number such as 1.5")
        return decimal_text(Decimal(s))
    if type_ == FLOAT:
        word = _FLOAT_WORDS.get(s.lower())
        if word is not None:
            return word
        if not _DECIMAL.fullmatch(s):
            raise NotOfType("a number such as 0.5 or 1e-3")
        return float_text(float(s))
    if type_ == BOOLEAN:
        if s.lower() in ("true", "false"):
            return s.lower()
        raise NotOfType("true or false")
    if type_ == DATE:
        try:
            return dt.date.fromisoformat(s).isoformat()
        except ValueError:
            raise NotOfType("a date such as 2026-01-31") from None
    if type_ in (TIMESTAMP, TIMESTAMPTZ):
        try:
            value = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise NotOfType("a timestamp such as 2026-01-31T12:00:00") from None
        if type_ == TIMESTAMPTZ and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return timestamp_text(value)
    raise NotOfType(f"a value of type {type_}")


def decimal_text(v: Decimal) -> str:
    """Plain notation without trailing fractional zeros: 1.50 → 1.5, 2.00 → 2, -0 → 0."""
    try:
        text = format(v, "f")
    except InvalidOperation:  # pragma: no cover - NaN decimals are not plan data
        raise NotOfType("a finite decimal number") from None
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def float_text(v: float) -> str:
    """Python's repr of the double: the shortest text that reads back as the same value."""
    if math.isnan(v):
        return "nan"
    return repr(v)


def timestamp_text(v: dt.datetime) -> str:
    """YYYY-MM-DDTHH:MM:SS[.ffffff without trailing zeros]; with a time zone, in UTC + Z."""
    zone = ""
    if v.tzinfo is not None:
        v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        zone = "Z"
    text = v.strftime("%Y-%m-%dT%H:%M:%S")
    if v.microsecond:
        text += f".{v.microsecond:06d}".rstrip("0")
    return f"{v.year:04d}{text[text.index('-') :]}{zone}"
