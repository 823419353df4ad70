"""The portable logical types a policy may declare for a source column.

A declared type decides how a value is read as text (the canonical text that pseudonyms hash),
how dates truncate, and what the output column is; it is what makes one policy mean the same
thing on every engine.
"""

from __future__ import annotations

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
