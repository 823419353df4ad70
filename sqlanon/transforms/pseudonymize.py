from __future__ import annotations

from sqlanon.plan.model import DIRECT, ColumnStep
from sqlanon.sql.shapes import Sql
from sqlanon.transforms.base import Int, LowerContext, Name, Param, Transform, register
from sqlanon.transforms.common import PSEUDONYM_TAG, canonical, keyed_hex


@register
class Pseudonymize(Transform):
    name = "pseudonymize"
    disclosure = 2
    summary = (
        "Keyed pseudonym: HMAC-SHA256 of `pseudonym|` and the value's canonical UTF-8 text "
        "under a named key (docs/keys.md#messages), as lowercase hex, optionally cut to "
        "`length` digits. The same value gives "
        "the same pseudonym in every table, view and engine that uses the same key, so "
        "joins keep working; without the key nobody can compute or reverse it. The key "
        "is read at query time from the policy's key relation (`keys.table`); its "
        "version comes from `keys.versions` (default 1), so rotating a key is a "
        "reviewed policy change."
    )
    nulls = "NULL stays NULL. The empty string is a value and gets a pseudonym."
    types_doc = (
        "Any type, hashed as its canonical text (see below): declare `type:` for "
        "non-text columns so every engine hashes the same text. Output is text."
    )
    example = "customer_id: {transform: pseudonymize, key: customer, length: 16}"
    privacy_class = DIRECT
    reads_canonical_text = True
    uses_key = True
    params = (
        Param("key", Name(), "name of the key in the key relation", required=True),
        Param("length", Int(8, 64), "hex digits kept (64 = the full 256-bit HMAC)", default=64),
    )

    def output_type(self, input_type: str, p: dict) -> str | None:
        return "text"

    def lower(self, ctx: LowerContext, x: Sql, step: ColumnStep) -> Sql:
        assert step.key is not None
        d = ctx.dialect
        digest = keyed_hex(ctx, canonical(ctx, x, step.input_type), step.key, PSEUDONYM_TAG)
        length = step.param("length")
        if length == 64:
            return digest
        return d.prim("substring", digest, d.number(1), d.number(length))
