from __future__ import annotations

from sqlanon.plan.model import DIRECT, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import Char, Int, LowerContext, Param, Transform, register
from sqlanon.transforms.common import canonical, mask_text, null_guard


@register
class Mask(Transform):
    name = "mask"
    disclosure = 3
    larger_discloses_more = (("keep_first", 1), ("keep_last", 1))
    summary = (
        "Replace characters with a mask character, keeping the first and/or last few. "
        "When a value is too short to hide anything (length ≤ keep_first + keep_last), "
        "every character is masked. The length of the value is preserved."
    )
    nulls = "NULL stays NULL; the empty string stays empty."
    types_doc = (
        "Works on the canonical text of the value, so numbers and dates can be masked "
        "too; the output is text. Characters are Unicode code points: a combining "
        "accent counts as one character."
    )
    example = 'phone: {transform: mask, keep_last: 4, char: "*"}'
    privacy_class = DIRECT
    reads_canonical_text = True
    params = (
        Param("keep_first", Int(0, 1000), "characters kept at the start", default=0),
        Param("keep_last", Int(0, 1000), "characters kept at the end", default=0),
        Param("char", Char(), "the mask character", default="*"),
    )

    def output_type(self, input_type: str, p: dict) -> str | None:
        return "text"

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        s = ctx.let(canonical(ctx, x, step.input_type), f"{step.sources[0]}_text")
        first, last = step.param("keep_first"), step.param("keep_last")
        return null_guard(ctx, s, mask_text(ctx, s, first, last, step.param("char")))
