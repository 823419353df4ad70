from __future__ import annotations

from sqlanon.plan.model import DIRECT, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import LowerContext, Transform, register


@register
class Nullify(Transform):
    name = "nullify"
    disclosure = 1
    summary = (
        "Keep the column but replace every value with NULL, so downstream SQL that "
        "selects it keeps working."
    )
    nulls = "Every row is NULL."
    types_doc = "Any type; the output keeps the source column's type."
    example = "notes: {transform: nullify}"
    privacy_class = DIRECT

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        return ctx.dialect.prim("null_like", x)
