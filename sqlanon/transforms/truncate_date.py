from __future__ import annotations

from typing import Any

from sqlanon.plan.model import QUASI, ColumnStep
from sqlanon.plan.types import TEMPORAL_TYPES
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import Choice, ColumnContext, LowerContext, Param, Transform, register

UNITS = ("year", "quarter", "month", "week", "day", "hour")


@register
class TruncateDate(Transform):
    name = "truncate_date"
    disclosure = 3
    groupable = True
    keeps_order = True
    summary = (
        "Generalize a date or timestamp to the start of its year, quarter, month, ISO "
        "week (Monday), day or hour."
    )
    nulls = "NULL stays NULL."
    types_doc = (
        "`date` (the default), `timestamp` or `timestamptz`; the output has the "
        "input's type. Timestamps with time zone are truncated in UTC, whatever the "
        "session time zone. `to: hour` needs a timestamp type."
    )
    example = "birth_date: {transform: truncate_date, to: year}"
    privacy_class = QUASI
    accepts = TEMPORAL_TYPES
    default_type = "date"
    params = (Param("to", Choice(UNITS), "the unit to truncate to", required=True),)

    def normalize(self, p: dict[str, Any], ctx: ColumnContext) -> dict[str, Any] | None:
        if p["to"] == "hour" and ctx.input_type == "date":
            ctx.error(
                "to",
                "`to: hour` needs a timestamp column",
                expected="`type: timestamp` or `type: timestamptz` on this column",
                hint="dates have no hours; truncate to day instead",
            )
            return None
        return p

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        return ctx.dialect.prim("truncate_date", x, unit=step.param("to"), type=step.input_type)
