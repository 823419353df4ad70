from __future__ import annotations

from sqlanon.plan.model import OTHER, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import LowerContext, Transform, register


@register
class Keep(Transform):
    name = "keep"
    disclosure = 5
    groupable = True
    summary = "Pass the value through unchanged."
    nulls = "NULL stays NULL."
    types_doc = "Any type; the output has the source column's type."
    example = "country: keep"
    privacy_class = OTHER

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        return x
