from __future__ import annotations

from typing import Any

from sqlanon.plan.model import QUASI, ColumnStep
from sqlanon.plan.types import TEMPORAL_TYPES
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import (
    ColumnContext,
    DateOrToday,
    Domain,
    LowerContext,
    Pairs,
    Param,
    Transform,
    register,
)
from sqlanon.transforms.common import (
    BUCKET_PARAMS,
    bucket_domain,
    bucket_output_type,
    lower_buckets,
    normalize_buckets,
)


@register
class Age(Transform):
    name = "age"
    disclosure = 3
    groupable = True
    keeps_order = True
    larger_discloses_more = (("width", -1),)
    summary = (
        "Replace a birth date with the age in whole years on `as_of` (a fixed date, or "
        "`today`: the current UTC date when the view is read, whatever the session's "
        "time zone), optionally "
        "bucketed with the same `width`/`min`/`max`/`edges`/`output` parameters as "
        "`bucket`. The age turns on the birthday; someone born on 29 February turns a "
        "year older on 1 March in common years."
    )
    nulls = "NULL stays NULL."
    types_doc = (
        "`date` (default), `timestamp` or `timestamptz` input (timestamps use their "
        "date part). Output is an integer, or text with `output: label`."
    )
    example = "birth_date: {transform: age, as_of: 2026-01-01, width: 10, max: 90}"
    privacy_class = QUASI
    accepts = TEMPORAL_TYPES
    default_type = "date"
    params = (Param("as_of", DateOrToday(), "the reference date", default="today"), *BUCKET_PARAMS)

    def normalize(self, p: dict[str, Any], ctx: ColumnContext) -> dict[str, Any] | None:
        return normalize_buckets(p, ctx, required=False)

    def output_type(self, input_type: str, p: dict[str, Any]) -> str | None:
        if p.get("width") is None and p.get("edges") is None:
            return "integer"
        return bucket_output_type("integer", p)

    def domain(self, p: dict[str, Any], output_type: str, lookup: Pairs = None) -> Domain:
        """Bucketed with bounds: one age bucket per edge, as for `bucket`; whole years alone
        fix no domain (a synthetic table lists them)."""
        return bucket_domain(p, output_type)

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        d = ctx.dialect
        birth = x if step.input_type == "date" else d.prim("cast", x, to="date")
        as_of = step.param("as_of")
        ref = (
            d.prim("current_date")
            if as_of == "today"
            else d.prim("date_from_text", d.string(as_of.isoformat()))
        )
        years = d.prim("age_years", birth, ref)
        p = dict(step.params)
        if p.get("width") is None and p.get("edges") is None:
            return years
        years = ctx.let(years, f"{step.sources[0]}_age")
        return lower_buckets(ctx, years, p, output_type=step.output_type)
