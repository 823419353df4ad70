from __future__ import annotations

from sqlanon.plan.model import DIRECT, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import Bool, Char, Int, LowerContext, Param, Transform, register
from sqlanon.transforms.common import canonical, mask_text


@register
class MaskEmail(Transform):
    name = "mask_email"
    disclosure = 3
    larger_discloses_more = (("keep_first", 1), ("keep_domain", 1))
    summary = (
        "Mask an e-mail address's local part, keeping its first character(s) and the "
        "domain: `alice@example.com` → `a****@example.com`. The split is at the last "
        "'@'. A value without '@' is masked entirely."
    )
    nulls = "NULL stays NULL; the empty string stays empty."
    types_doc = "Text in, text out. Lengths are preserved; characters are code points."
    example = "email: {transform: mask_email}"
    privacy_class = DIRECT
    reads_canonical_text = True
    params = (
        Param("keep_first", Int(0, 1000), "characters of the local part kept", default=1),
        Param("keep_domain", Bool(), "keep the domain; false masks it too", default=True),
        Param("char", Char(), "the mask character", default="*"),
    )

    def output_type(self, input_type: str, p: dict) -> str | None:
        return "text"

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        d = ctx.dialect
        src = step.sources[0]
        s = ctx.let(canonical(ctx, x, step.input_type), f"{src}_text")
        char = step.param("char")
        at = d.string("@")
        domain = ctx.let(d.prim("after_last", s, at), f"{src}_domain")
        # the local part is s's first (length - domain length - 1) characters
        local_length = ctx.let(
            d.prim(
                "sub",
                d.prim("char_length", s),
                d.prim("add", d.prim("char_length", domain), d.number(1)),
            ),
            f"{src}_local_length",
        )
        local = mask_text(ctx, s, step.param("keep_first"), 0, char, n=local_length)
        shown_domain = domain if step.param("keep_domain") else mask_text(ctx, domain, 0, 0, char)
        return d.prim(
            "case",
            [
                d.prim("is_null", s), d.prim("null"),
                d.prim("contains", s, at), d.prim("concat", [local, at, shown_domain]),
                mask_text(ctx, s, 0, 0, char),
            ],
        )  # fmt: skip
