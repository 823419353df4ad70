from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlanon.plan.model import DIRECT, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import Bool, LowerContext, Param, Scalar, Transform, register


@register
class Constant(Transform):
    name = "constant"
    disclosure = 1
    larger_discloses_more = (("keep_null", 1),)
    summary = "Redact: replace every value with one fixed value."
    nulls = (
        "NULL stays NULL by default, so missingness is still visible; "
        "`keep_null: false` replaces NULL too."
    )
    types_doc = (
        "Any input type. The output is text for a text value, a number for a number "
        "(integer or decimal) and a boolean for true/false."
    )
    example = 'ssn: {transform: constant, value: "REDACTED"}'
    privacy_class = DIRECT
    params = (
        Param("value", Scalar(), "the replacement value", required=True),
        Param("keep_null", Bool(), "leave NULL as NULL", default=True),
    )

    def output_type(self, input_type: str, p: dict[str, Any]) -> str | None:
        v = p["value"]
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int):
            return "integer"
        if isinstance(v, Decimal):
            return "decimal"
        return "text"

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        d = ctx.dialect
        v = step.param("value")
        if isinstance(v, bool):
            literal = d.prim("boolean_literal", value=v)
        elif isinstance(v, int | Decimal):
            literal = d.number(v)
        else:
            literal = d.string(v)
        if not step.param("keep_null"):
            return literal
        return d.prim("case", [d.prim("is_null", x), d.prim("null"), literal])
