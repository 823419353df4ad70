"""The transforms as docs/transforms.md and docs/keys.md describe them, in plain Python: the
oracle the differential test (tests/test_differential.py) compares every engine with. It
shares no code with the lowering; the canonical text comes from sqlanon/canonical.py, itself
written from the documented table and checked against the conformance vectors.

Each function takes a Python value of the column's logical type (None for NULL) and returns
the documented output as a Python value, compared through conformance.canonical_value."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from decimal import Decimal, localcontext
from typing import Any

from sqlanon.plan.canonical import decimal_text, float_text, timestamp_text


def canonical(x: Any, type_: str) -> str:
    """docs/transforms.md#canonical-text."""
    if type_ == "text":
        return str(x)
    if type_ == "integer":
        return str(int(x))
    if type_ == "decimal":
        return decimal_text(Decimal(x))
    if type_ == "float":
        return float_text(float(x))
    if type_ == "boolean":
        return "true" if x else "false"
    if type_ == "date":
        return f"{x.year:04d}-{x.month:02d}-{x.day:02d}"
    if type_ in ("timestamp", "timestamptz"):
        return timestamp_text(x)
    raise ValueError(type_)


def pseudonymize(x: Any, type_: str, key: bytes, length: int = 64) -> str | None:
    if x is None:
        return None
    message = f"pseudonym|{canonical(x, type_)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:length]


def keep(x: Any, type_: str) -> Any:
    return x


def prefix(x: Any, type_: str, length: int) -> str | None:
    return None if x is None else canonical(x, type_)[:length]


def mask(x: Any, type_: str, keep_first: int = 0, keep_last: int = 0, char: str = "*") -> Any:
    if x is None:
        return None
    s = canonical(x, type_)
    n = len(s)
    if n <= keep_first + keep_last:
        return char * n
    return s[:keep_first] + char * (n - keep_first - keep_last) + s[n - keep_last :]


def bucket(x: Any, type_: str, **p: Any) -> Any:
    """docs/transforms.md#bucket: [min + i·width, min + (i+1)·width), bottom- and top-coded;
    edges; labels; floats: NaN no bucket, an infinity top/bottom coded or none."""
    if x is None:
        return None
    label = p.get("output") == "label"
    if type_ == "float":
        if math.isnan(x):
            return None
        value: Any = x
    else:
        value = Decimal(x)
    edges = p.get("edges")
    if edges is not None:
        es = [Decimal(str(e)) for e in edges]
        i = 0
        for j in range(1, len(es)):
            if value >= es[j]:
                i = j
        if label:
            return _label(es, i)
        return es[i]
    width = Decimal(str(p["width"]))
    lo = None if p.get("min") is None else Decimal(str(p["min"]))
    hi = None if p.get("max") is None else Decimal(str(p["max"]))
    if hi is not None and value >= hi:
        return hi
    if lo is not None and value < lo:
        return lo
    if type_ == "float" and math.isinf(value):
        return None
    origin = lo if lo is not None else Decimal(0)
    if type_ == "float" and lo is not None and hi is not None and (hi - lo) / width <= 1000:
        # a bounded range: x is compared with each edge as a float (0.6 is in [0.6, 0.7))
        es, e = [], lo
        while e < hi:
            es.append(e)
            e += width
        i = max(j for j, edge in enumerate(es) if value >= float(edge))
        return es[i]
    if type_ == "float":  # in float arithmetic, as written
        f_origin, f_width = float(origin), float(width)
        return float(math.floor((value - f_origin) / f_width)) * f_width + f_origin
    with localcontext() as ctx:
        ctx.prec = 100  # 38-digit decimals, exactly
        k = (value - origin) // width
        if (value - origin) % width < 0:  # Decimal // truncates toward zero
            k -= 1
        return origin + k * width


def _label(edges: list[Decimal], i: int) -> str:
    def num(v: Decimal) -> str:
        return decimal_text(v)

    if i == 0:
        return f"< {num(edges[1])}"
    if i == len(edges) - 1:
        return f">= {num(edges[i])}"
    return f"[{num(edges[i])}, {num(edges[i + 1])})"


def truncate_date(x: Any, type_: str, to: str) -> Any:
    """The start of x's year, quarter, month, ISO week (Monday), day or hour, in x's type;
    timestamps with time zone in UTC."""
    if x is None:
        return None
    if type_ == "timestamptz":
        x = x.astimezone(dt.timezone.utc)
    d = x if type_ == "date" else x.date()
    if to == "year":
        start = d.replace(month=1, day=1)
    elif to == "quarter":
        start = d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    elif to == "month":
        start = d.replace(day=1)
    elif to == "week":
        start = d - dt.timedelta(days=d.weekday())
    else:
        start = d
    if type_ == "date":
        return start
    out = dt.datetime(start.year, start.month, start.day, x.hour if to == "hour" else 0)
    return out.replace(tzinfo=dt.timezone.utc) if type_ == "timestamptz" else out


def age(x: Any, type_: str, as_of: dt.date | str, **buckets: Any) -> Any:
    """Whole years from birth to as_of; the year turns on the birthday, a 29 February
    birthday on 1 March in common years; timestamps use their date part; then bucketed like
    an integer `bucket` when bucket parameters are given."""
    if buckets:
        return bucket(age(x, type_, as_of), "integer", **buckets)
    if x is None:
        return None
    if type_ == "timestamptz":
        x = x.astimezone(dt.timezone.utc)
    birth = x if type_ == "date" else x.date()
    on = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(as_of)
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


TRANSFORMS = {
    "pseudonymize": pseudonymize,
    "keep": keep,
    "prefix": prefix,
    "mask": mask,
    "bucket": bucket,
    "truncate_date": truncate_date,
    "age": age,
}
