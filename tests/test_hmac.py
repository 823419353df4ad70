"""RFC 4231 HMAC-SHA256 test cases 1, 2, 3, 4, 6 and 7 (full 256-bit output), computed by the
generated DuckDB SQL from pads that `sqlanon keys` derived and stored."""

from __future__ import annotations

import pytest

from sqlanon.sql import dialect
from sqlanon.sql.views import key_table_statements
from sqlanon.warehouse import ENGINES
from sqlanon.warehouse.keys import pads, store

# (case, key, data, HMAC-SHA256) from RFC 4231 section 4
RFC4231 = [
    (
        1,
        "0b" * 20,
        "4869205468657265",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        2,
        "4a656665",
        "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (3, "aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (
        4,
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        6,
        "aa" * 131,
        "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
        "617368204b6579204669727374",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        7,
        "aa" * 131,
        "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
        "73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174"
        "612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e"
        "6720757365642062792074686520484d414320616c676f726974686d2e",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]
TABLE = ("privacy", "sqlanon_keys")


@pytest.mark.parametrize("engine_name", [e for e in ENGINES if e in dialect.available()])
@pytest.mark.parametrize("case,key,data,expected", RFC4231, ids=[f"case{c[0]}" for c in RFC4231])
def test_rfc4231(case, key, data, expected, engine_name, live):
    engine = live.get(engine_name)
    d = dialect.get(engine_name)
    table = ("rfc4231", "keys")
    for s in key_table_statements(table, d):
        engine.execute(s.text)
    # one name, a version per case: cases 6 and 7 share a key, which two names may not
    store(engine, d, table, "rfc", case, bytes.fromhex(key), replace=True)
    t = d.relation(table)
    inner, outer = (
        d.prim("key_value", t, d.ident(f"{half}_pad"), d.string("rfc"), d.number(case))
        for half in ("inner", "outer")
    )
    expr = d.prim("hmac_sha256_hex", d.prim("bytes_from_hex", d.string(data)), inner, outer)
    (got,) = engine.query(d.statement("select_value", expr).text)[0]
    assert got == expected


def test_pads_follow_rfc2104_for_long_keys():
    inner, outer = pads(b"\xaa" * 131)
    assert len(inner) == len(outer) == 64
    assert inner != outer


def test_stored_key_is_not_replaced_silently(duck, engine):
    from sqlanon.warehouse.keys import KeyError_

    for s in key_table_statements(TABLE, duck):
        engine.execute(s.text)
    store(engine, duck, TABLE, "k", 1, b"a" * 32)
    with pytest.raises(KeyError_, match="already exists"):
        store(engine, duck, TABLE, "k", 1, b"b" * 32)
    store(engine, duck, TABLE, "k", 1, b"b" * 32, replace=True)
    assert engine.query('SELECT COUNT(*) FROM "privacy"."sqlanon_keys"')[0][0] == 1


def test_one_secret_is_not_loaded_under_two_names(duck, engine):
    """A key has one purpose (docs/keys.md): the loader refuses a secret that another key
    name already holds, naming that key but never the secret."""
    from sqlanon.warehouse.keys import KeyError_

    for s in key_table_statements(TABLE, duck):
        engine.execute(s.text)
    store(engine, duck, TABLE, "noise", 1, b"s" * 32)
    with pytest.raises(KeyError_, match="already loaded as key 'noise' version 1") as err:
        store(engine, duck, TABLE, "customer", 1, b"s" * 32)
    assert "sss" not in str(err.value)
    store(engine, duck, TABLE, "noise", 2, b"s" * 32)  # another version of the same key: fine
    store(engine, duck, TABLE, "customer", 1, b"t" * 32)
