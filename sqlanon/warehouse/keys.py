"""Key material: read a secret from the environment or a file, derive HMAC's padded keys, and
store them in the warehouse's key relation through bound parameters.

The secret and its pads never reach generated SQL, the manifest, logs or error messages:
functions here take bytes and return bytes, and their errors name only the key's name,
version and where it was to be read from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

from sqlanon.sql.dialect import Dialect
from sqlanon.sql.shapes import Sql

BLOCK = 64  # SHA-256 block size in bytes
MIN_KEY_BYTES = 16
ENCODINGS = ("hex", "base64", "utf8")


class KeyError_(ValueError):
    """A key could not be read or stored; the message never contains key material."""


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104): K' = K, or SHA-256(K) when K is
    longer than a block, zero-padded to 64 bytes, then XOR 0x36 / 0x5c."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def decode(text: str, encoding: str, where: str) -> bytes:
    text = text.strip()
    try:
        if encoding == "hex":
            return binascii.unhexlify(text)
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        if encoding == "utf8":
            return text.encode("utf-8")
    except (binascii.Error, ValueError):
        raise KeyError_(f"the key in {where} is not valid {encoding}") from None
    raise KeyError_(f"unknown key encoding '{encoding}'; expected one of {', '.join(ENCODINGS)}")


def read_secret(
    env: str | None, file: str | None, encoding: str, min_bytes: int = MIN_KEY_BYTES
) -> bytes:
    if (env is None) == (file is None):
        raise KeyError_("give exactly one of --from-env or --from-file")
    if env is not None:
        where = f"environment variable {env}"
        text = os.environ.get(env)
        if text is None:
            raise KeyError_(f"{where} is not set")
    else:
        where = f"file {file}"
        try:
            text = Path(file).read_text(encoding="utf-8")  # type: ignore[arg-type]
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyError_(f"cannot read {where}: {type(exc).__name__}") from None
    key = decode(text, encoding, where)
    if len(key) < min_bytes:
        raise KeyError_(
            f"the key in {where} is {len(key)} bytes; at least {min_bytes} are "
            "required (32 random bytes recommended: `openssl rand -hex 32`)"
        )
    return key


class Engine(Protocol):
    def placeholder(self) -> Sql: ...
    def execute(self, sql: str, params: Any = ()) -> None: ...
    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]: ...


def store(
    engine: Engine,
    dialect: Dialect,
    table: tuple[str, ...],
    name: str,
    version: int,
    key: bytes,
    replace: bool = False,
) -> None:
    """Insert the key's pads under (name, version). An existing entry is only replaced when
    asked: silently changing a key would silently change every pseudonym."""
    t = dialect.relation(table)
    p = engine.placeholder()
    (count,) = engine.query(dialect.statement("count_key", t, [p, p]).text, (name, version))[0]
    if count and not replace:
        raise KeyError_(
            f"key '{name}' version {version} already exists in "
            f"{'.'.join(table)}; load a new version, or pass --replace"
        )
    inner, outer = pads(key)
    same = engine.query(dialect.statement("keys_with_pad", t, p).text, (inner,))
    others = sorted((str(n), int(v)) for n, v in same if str(n) != name)
    if others:
        raise KeyError_(
            f"this secret is already loaded as key '{others[0][0]}' version {others[0][1]} in "
            f"{'.'.join(table)}: a key has one purpose (docs/keys.md); generate a new secret "
            f"for '{name}'"
        )
    if count:
        engine.execute(dialect.statement("delete_key", t, [p, p]).text, (name, version))
    engine.execute(
        dialect.statement("insert_key", t, [p, p, p, p]).text, (name, version, inner, outer)
    )


def needed(plan: Any) -> list[tuple[tuple[str, ...], str, int, str]]:
    """(key relation, name, version, what it is used for) of every key the plan's views and
    releases read, in a stable order: what `keys ddl` lists and `keys status` checks."""
    uses: dict[tuple[tuple[str, ...], str, int], set[str]] = {}
    for v in plan.views:
        for c in v.columns:
            if c.key is not None and c.emitted:
                uses.setdefault((v.key_table, c.key.name, c.key.version), set()).add("pseudonyms")
        if v.sample is not None:
            key = (v.key_table, v.sample.key.name, v.sample.key.version)
            uses.setdefault(key, set()).add("sampling")
    for r in plan.releases:
        uses.setdefault((r.key_table, r.key.name, r.key.version), set()).add("release noise")
    for t in plan.synthetic:
        uses.setdefault((t.key_table, t.key.name, t.key.version), set()).add("synthetic noise")
    return sorted((t, n, ver, ", ".join(sorted(u))) for (t, n, ver), u in uses.items())


def is_loaded(
    engine: Engine, dialect: Dialect, table: tuple[str, ...], name: str, version: int
) -> bool:
    p = engine.placeholder()
    sql = dialect.statement("count_key", dialect.relation(table), [p, p]).text
    return bool(engine.query(sql, (name, version))[0][0])
