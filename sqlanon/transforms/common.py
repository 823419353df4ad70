"""Lowering pieces shared by several transforms, composed only of dialect primitives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlanon.plan import canonical as plan_canonical
from sqlanon.plan.model import KeyRef
from sqlanon.sql.shapes import Sql, number_text
from sqlanon.transforms.base import Choice, ColumnContext, LowerContext, Number, Numbers, Param

MAX_CASE_BUCKETS = 1000


def canonical(ctx: LowerContext, x: Sql, type_: str | None) -> Sql:
    """The canonical text of x (docs/transforms.md#canonical-text)."""
    from sqlanon.sql.dialect import DialectError

    d = ctx.dialect
    if (type_ or "text") in d.features.unsupported_canonical:
        raise DialectError(
            f"{d.title} cannot produce the canonical text of {type_} values "
            "identically to the other engines (docs/dialects.md); declare the "
            "column decimal, or round it, before hashing or masking it"
        )
    return d.prim("canonical_text", x, type=type_ or "text")


# Purpose tags (docs/keys.md#messages): every keyed hash is HMAC(key, "<purpose>|" + text), so
# the messages of two purposes never coincide, even under one secret loaded twice.
PSEUDONYM_TAG = "pseudonym"
SAMPLE_TAG = "sample"
RANK_TAG = "rank"
NOISE_TAG = "noise"
DRAW_TAG = "draw"  # a synthetic row's uniforms (sqlanon/sql/synthetic.py)
CHOICE_TAG = "choice"  # the noise choosing a synthetic table's tree (`structure: auto`)


def keyed_hex(ctx: LowerContext, text: Sql, key: KeyRef, purpose: str) -> Sql:
    """HMAC-SHA256 of the UTF-8 bytes of `purpose|text` under a policy key, as 64 lowercase
    hex digits; NULL when text is NULL."""
    d = ctx.dialect
    inner, outer = ctx.key_pads[key]
    message = d.prim("concat", [d.string(f"{purpose}|"), text])
    return d.prim("hmac_sha256_hex", d.prim("utf8", message), inner, outer)


def mask_text(
    ctx: LowerContext, s: Sql, first: int, last: int, char: str, n: Sql | None = None
) -> Sql:
    """Replace every code point but the first `first` and last `last` with `char`; when that
    would leave nothing masked, mask everything. Length is preserved. `n` may give the
    length to mask when s is a longer text whose first `n` characters are meant (last = 0)."""
    d = ctx.dialect
    if n is None:
        n = d.prim("char_length", s)
    c = d.string(char)
    everything = d.prim("repeat", c, n)
    if first == 0 and last == 0:
        return everything
    parts = []
    if first:
        parts.append(d.prim("substring", s, d.number(1), d.number(first)))
    parts.append(d.prim("repeat", c, d.prim("sub", n, d.number(first + last))))
    if last:
        start = d.prim("sub", n, d.number(last - 1))
        parts.append(d.prim("substring", s, start, d.number(last)))
    return d.prim(
        "case", [d.prim("le", n, d.number(first + last)), everything, d.prim("concat", parts)]
    )


def null_guard(ctx: LowerContext, x: Sql, value: Sql) -> Sql:
    """NULL when x is NULL, else value: states a transform's NULL rule in the SQL itself."""
    d = ctx.dialect
    return d.prim("case", [d.prim("is_null", x), d.prim("null"), value])


# -- buckets (bucket, age) ---------------------------------------------------------------------

BUCKET_PARAMS = (
    Param("width", Number(0, exclusive_minimum=True), "bucket width (with optional min/max)"),
    Param("min", Number(), "with width: values below are bottom-coded into the first bucket"),
    Param("max", Number(), "with width: values at or above form the top-coded last bucket"),
    Param("edges", Numbers(), "explicit bucket boundaries instead of width"),
    Param(
        "output",
        Choice(("lower", "label")),
        "`lower`: the bucket's lower bound (a number); `label`: text such as '[10, 20)'",
        default="lower",
    ),
)


def normalize_buckets(
    p: dict[str, Any], ctx: ColumnContext, required: bool
) -> dict[str, Any] | None:
    """Check width/min/max/edges/output together."""
    width, lo, hi, edges = p.get("width"), p.get("min"), p.get("max"), p.get("edges")
    if width is None and edges is None:
        if required:
            ctx.error(
                None,
                "bucket needs `width` or `edges`",
                expected="`width: 10` (optionally with min/max) or `edges: [18, 25, 35]`",
            )
            return None
        for extra in ("min", "max"):
            if p.get(extra) is not None:
                ctx.error(extra, f"`{extra}` goes with `width`", expected="`width:` as well")
                return None
        return p
    if width is not None and edges is not None:
        ctx.error(
            "edges",
            "give either `width` or `edges`, not both",
            expected="`width` (with optional `min`/`max`) or `edges`",
        )
        return None
    if edges is not None and (lo is not None or hi is not None):
        ctx.error(
            "min" if lo is not None else "max",
            "`min`/`max` go with `width`, not `edges`",
            hint="the first and last edges already bottom- and top-code",
        )
        return None
    if lo is not None and hi is not None and not hi > lo:
        ctx.error(
            "max", f"`max` ({hi}) must be greater than `min` ({lo})", expected="`min` < `max`"
        )
        return None
    if p.get("output") == "label" and bucket_edges(p) is None:
        if lo is None or hi is None:
            ctx.error(
                "output",
                "labels need a bounded range",
                expected="`min` and `max` with `width`, or `edges`",
                hint="or use output: lower",
            )
        else:
            ctx.error(
                "width",
                "too many buckets for labels",
                expected=f"at most {MAX_CASE_BUCKETS} buckets between min and max",
                hint="use output: lower, or a wider bucket",
            )
        return None
    return p


def bucket_edges(p: dict[str, Any]) -> tuple[Any, ...] | None:
    """The finite edge list: given, or derived from width/min/max when not too long."""
    if p.get("edges") is not None:
        return tuple(p["edges"])
    width, lo, hi = p.get("width"), p.get("min"), p.get("max")
    if width is None or lo is None or hi is None:
        return None
    if (Decimal(hi) - Decimal(lo)) / Decimal(width) > MAX_CASE_BUCKETS:
        return None
    edges = []
    v = Decimal(lo)
    while v < Decimal(hi):
        edges.append(_plain(v))
        v += Decimal(width)
    edges.append(_plain(Decimal(hi)))
    return tuple(edges)


def _plain(v: Decimal) -> int | Decimal:
    return int(v) if v == v.to_integral_value() else v


def bucket_domain(p: dict[str, Any], output_type: str) -> tuple[str, ...] | None:
    """Bounded buckets (edges, or min, max and width) have one output per edge: its lower
    bound, or its label (a synthetic table's public domain, for bucket and age)."""
    edges = bucket_edges(p)
    if edges is None:
        return None
    if p.get("output") == "label":
        return tuple(bucket_label(edges, i) for i in range(len(edges)))
    return tuple(plan_canonical.of_text(number_text(e), output_type) for e in edges)


def bucket_output_type(input_type: str, p: dict[str, Any]) -> str:
    if p.get("output") == "label":
        return "text"
    numbers = [v for k in ("width", "min", "max") if (v := p.get(k)) is not None]
    numbers += list(p.get("edges") or ())
    if input_type == "integer" and all(isinstance(v, int) for v in numbers):
        return "integer"
    return "float" if input_type == "float" else "decimal"


def lower_buckets(
    ctx: LowerContext,
    x: Sql,
    p: dict[str, Any],
    exact: bool = True,
    decimal: bool = False,
    output_type: str | None = None,
) -> Sql:
    """`exact` (integer and decimal input): the bucket is x minus its floor remainder, with
    MOD, which every engine computes exactly on integers and decimals — dividing first is not
    exact (DuckDB divides decimals as doubles: 0.3 / 0.1 < 3; NUMERIC division rounds to the
    scale). Floats (exact=False) keep floor(x / width) in float arithmetic, so any finite value
    has a bucket; NaN has none (NULL: engines order NaN differently, so no comparison may
    decide it), and ±infinity is top/bottom coded where a bound catches it, else NULL. No
    value can make the query fail (docs/transforms.md#bucket)."""
    d = ctx.dialect
    edges = bucket_edges(p)
    label = p.get("output") == "label"
    parts: list[Sql] = [d.prim("is_null", x), d.prim("null")]

    def num(v: Any) -> Sql:
        """A bound or width; a decimal literal where the bucket is a decimal (BigQuery reads
        0.25 as a FLOAT64, which would make the whole bucket one)."""
        if output_type == "decimal" and not isinstance(v, int):
            return d.prim("decimal_literal", d.number(v), d.string(number_text(v)))
        return d.number(v)

    if not exact:
        parts += [d.prim("is_nan", x), d.prim("null")]
    # a ladder where the edges are irregular, labels are asked for, or the input is a float
    # (whose buckets compare x with each edge: floor(x / width) in float arithmetic could
    # put x = 0.3 in [0.2, 0.3) when width is 0.1); integers and decimals with a uniform
    # width take the arithmetic form at any count, which MOD computes exactly
    if edges and (p.get("edges") is not None or label or not exact):
        values = [
            d.string(bucket_label(edges, i)) if label else num(e) for i, e in enumerate(edges)
        ]
        ladder = d.prim("case", [*parts, *_ladder(d, x, edges, values)])
        # the edges are decimal literals: a float column's buckets are floats
        return d.prim("cast", ladder, to="float") if output_type == "float" else ladder
    width, lo, hi = p["width"], p.get("min"), p.get("max")
    origin = num(lo if lo is not None else 0)
    if exact:
        floor = d.prim(
            "mod_bucket", x, origin, num(width), decimal=decimal, above_origin=lo is not None
        )
    else:
        floor = d.prim("float_bucket", x, origin, d.number(width))
    if hi is not None:
        parts += [d.prim("ge", x, d.number(hi)), num(hi)]
    if lo is not None:
        parts += [d.prim("lt", x, d.number(lo)), num(lo)]
    if not exact and (hi is None or lo is None):
        parts += [d.prim("is_nan", d.prim("sub", x, x)), d.prim("null")]  # ±infinity
    return d.prim("case", [*parts, floor])


LADDER_STEPS = 8  # edges a flat ladder tests in turn; more are searched by halves


def _ladder(d: Any, x: Sql, edges: tuple[Any, ...], values: list[Sql]) -> list[Sql]:
    """CASE arguments (WHEN/THEN pairs, then ELSE) giving the value of the bucket
    [edges[i], edges[i+1]) that holds x (values[0] below edges[1]): a flat ladder from the top
    edge down when there are few edges, else nested CASEs that halve the edges at each level,
    so a row makes about log2(n) comparisons instead of up to n (a 1,000-bucket flat ladder
    ran 52x slower than arithmetic on DuckDB, issue 17)."""

    def search(first: int, last: int) -> list[Sql]:
        # x is >= edges[first] here (or below edges[1] when first is 0)
        if last - first <= LADDER_STEPS:
            parts: list[Sql] = []
            for i in range(last, first, -1):
                parts += [d.prim("ge", x, d.number(edges[i])), values[i]]
            return [*parts, values[first]]
        mid = (first + last + 1) // 2
        return [
            d.prim("ge", x, d.number(edges[mid])),
            _case(d, search(mid, last)),
            _case(d, search(first, mid - 1)),
        ]

    return search(0, len(edges) - 1)


def _case(d: Any, parts: list[Sql]) -> Sql:
    return d.prim("case", parts) if len(parts) > 1 else parts[0]


def bucket_label(edges: tuple[Any, ...], i: int) -> str:
    """Labels say exactly which values a bucket holds: '< 25', '[25, 35)', '>= 65'."""
    if i == 0:
        return f"< {number_text(edges[1])}"
    if i == len(edges) - 1:
        return f">= {number_text(edges[i])}"
    return f"[{number_text(edges[i])}, {number_text(edges[i + 1])})"
