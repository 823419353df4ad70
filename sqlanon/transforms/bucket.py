from __future__ import annotations

from typing import Any

from sqlanon.plan.model import QUASI, ColumnStep
from sqlanon.plan.types import NUMERIC_TYPES
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import ColumnContext, Domain, LowerContext, Pairs, Transform, register
from sqlanon.transforms.common import (
    BUCKET_PARAMS,
    bucket_domain,
    bucket_output_type,
    lower_buckets,
    normalize_buckets,
)


@register
class Bucket(Transform):
    name = "bucket"
    disclosure = 3
    groupable = True
    keeps_order = True
    larger_discloses_more = (("width", -1),)
    summary = (
        "Generalize a number into a range. With `width`, buckets are "
        "[min, min+width), [min+width, min+2·width), … up to `max`; values below `min` "
        "are bottom-coded into the first bucket and values at or above `max` are "
        "top-coded into the last one, [max, ∞). Without `min`, buckets align at 0 and "
        "nothing is bottom-coded; without `max`, nothing is top-coded. With `edges` "
        "[e0, e1, …, en], the buckets are (−∞, e1) (reported as e0), [e1, e2), …, "
        "[en, ∞). The output is the bucket's lower bound (`output: lower`, default, a "
        "number that sorts and plots correctly) or a text label (`output: label`: "
        "'< 25', '[25, 35)', '>= 65') that says exactly which values it holds."
    )
    nulls = (
        "NULL stays NULL. A float NaN has no bucket (NULL); ±infinity is top- or bottom-coded "
        "where `max`/`min` or the edges catch it, else NULL. Any finite float has a bucket, "
        "computed in float arithmetic: no value makes the query fail."
    )
    types_doc = (
        "Numeric input (integer, decimal, float; default integer). `output: lower` "
        "gives an integer when the input and every bound are integers, a float for float "
        "input, else a decimal; `output: label` gives text. Integers and decimals are "
        "bucketed exactly. A float is compared with each edge (as a float) when the edges "
        "are listed or `min` and `max` bound at most 1,000 buckets — with `width: 0.1`, "
        "0.6 is in [0.6, 0.7) — and otherwise bucketed as floor((x − min) / width) in float "
        "arithmetic, where 0.6 / 0.1 < 6 puts it in [0.5, 0.6): bound float ranges, or use "
        "a decimal column."
    )
    example = "income: {transform: bucket, width: 10000, min: 0, max: 200000}"
    privacy_class = QUASI
    accepts = NUMERIC_TYPES
    default_type = "integer"
    params = BUCKET_PARAMS

    def normalize(self, p: dict[str, Any], ctx: ColumnContext) -> dict[str, Any] | None:
        return normalize_buckets(p, ctx, required=True)

    def output_type(self, input_type: str, p: dict[str, Any]) -> str | None:
        return bucket_output_type(input_type, p)

    def domain(self, p: dict[str, Any], output_type: str, lookup: Pairs = None) -> Domain:
        return bucket_domain(p, output_type)

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        return lower_buckets(
            ctx,
            x,
            dict(step.params),
            exact=step.input_type != "float",
            decimal=step.input_type == "decimal",
            output_type=step.output_type,
        )
