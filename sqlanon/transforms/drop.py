from __future__ import annotations

from sqlanon.plan.model import DIRECT, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import LowerContext, Transform, register


@register
class Drop(Transform):
    name = "drop"
    disclosure = 0
    summary = (
        "Leave the column out of the view entirely. Columns a policy does not name are "
        "dropped too; listing them as `drop` documents the decision for reviewers."
    )
    nulls = "Not applicable: the column does not exist in the output."
    types_doc = "Any type."
    example = "full_name: drop"
    privacy_class = DIRECT

    def output_type(self, input_type: str, p: dict) -> str | None:
        return None

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        raise AssertionError("dropped columns are never lowered")
