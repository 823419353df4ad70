from __future__ import annotations

from sqlanon.plan.model import QUASI, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import Int, LowerContext, Param, Transform, register
from sqlanon.transforms.common import canonical


@register
class Prefix(Transform):
    name = "prefix"
    disclosure = 3
    groupable = True
    larger_discloses_more = (("length", 1),)
    summary = (
        "Keep only the first `length` characters, e.g. the first three digits of a "
        "postal code. Shorter values are kept whole."
    )
    nulls = "NULL stays NULL; the empty string stays empty."
    types_doc = (
        "Works on the canonical text of the value (an integer ZIP code loses its "
        "leading zeros: store codes as text); the output is text."
    )
    example = "zip: {transform: prefix, length: 3}"
    privacy_class = QUASI
    reads_canonical_text = True
    params = (Param("length", Int(1, 1000), "characters kept", required=True),)

    def output_type(self, input_type: str, p: dict) -> str | None:
        return "text"

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        d = ctx.dialect
        return d.prim(
            "substring",
            canonical(ctx, x, step.input_type),
            d.number(1),
            d.number(step.param("length")),
        )
