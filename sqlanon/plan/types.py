"""The portable logical types a policy may declare for a source column.

A declared type decides how a value is read as text (the canonical text that pseudonyms hash),
how dates truncate, and what the output column is; it is what makes one policy mean the same
thing on every engine.
"""

from __future__ import annotations

import re

TEXT = "text"
INTEGER = "integer"
DECIMAL = "decimal"
FLOAT = "float"
BOOLEAN = "boolean"
DATE = "date"
TIMESTAMP = "timestamp"
TIMESTAMPTZ = "timestamptz"

ALL_TYPES = (TEXT, INTEGER, DECIMAL, FLOAT, BOOLEAN, DATE, TIMESTAMP, TIMESTAMPTZ)
NUMERIC_TYPES = (INTEGER, DECIMAL, FLOAT)
TEMPORAL_TYPES = (DATE, TIMESTAMP, TIMESTAMPTZ)

# How an engine's own type names (information_schema data_type) map to families of values: for
# checking a live column against the policy (drift) and choosing how to measure it (risk,
# utility). The first pattern that matches wins.
_ENGINE_FAMILIES = (
    (re.compile(r"timestamp|datetime", re.I), "timestamp"),
    (re.compile(r"^date$|^date\b", re.I), "date"),
    (re.compile(r"\btime\b", re.I), "time"),
    (re.compile(r"int|numeric|decimal|double|float|real|number", re.I), "number"),
    (re.compile(r"bool", re.I), "boolean"),
    (re.compile(r"blob|bytea|binary|bytes", re.I), "bytes"),
    (re.compile(r"char|text|string|varchar", re.I), "text"),
)
ORDERED_FAMILIES = frozenset({"number", "date", "timestamp", "time"})
LOGICAL_FAMILY = {
    TEXT: "text",
    INTEGER: "number",
    DECIMAL: "number",
    FLOAT: "number",
    BOOLEAN: "boolean",
    DATE: "date",
    TIMESTAMP: "timestamp",
    TIMESTAMPTZ: "timestamp",
}


def engine_family(engine_type: str) -> str | None:
    """The family of an engine's type name, or None when it is none of these."""
    for pattern, name in _ENGINE_FAMILIES:
        if pattern.search(engine_type):
            return name
    return None
