"""Generalization hierarchies in ARX's CSV form: one row per original value, column i holding
its generalization at level i (level 0 is the value itself); `;` or `,` separated."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path


class HierarchyError(ValueError):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Hierarchy:
    rows: tuple[tuple[str, ...], ...]  # (value, level 1, level 2, ...)

    @property
    def depth(self) -> int:
        """The highest level (0 means only the values themselves)."""
        return len(self.rows[0]) - 1

    def at_level(self, level: int) -> tuple[tuple[str, str], ...]:
        return tuple((row[0], row[level]) for row in self.rows)


def parse_rows(rows: list[tuple[str, ...]], where: str) -> Hierarchy:
    if not rows:
        raise HierarchyError(f"{where} has no rows")
    width = len(rows[0])
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        if len(row) != width:
            raise HierarchyError(
                f"{where}: row {i} has {len(row)} levels, the first row has {width}", line=i
            )
        if row[0] in seen:
            raise HierarchyError(
                f"{where}: value '{row[0]}' appears twice (rows {seen[row[0]]} and {i})", line=i
            )
        seen[row[0]] = i
    return Hierarchy(tuple(rows))


def read_csv(path: Path) -> tuple[Hierarchy, str]:
    """The hierarchy and the sha256 of the file's bytes."""
    data = path.read_bytes()
    text = data.decode("utf-8-sig")
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first else ","
    rows = [
        tuple(cell.strip() for cell in row)
        for row in csv.reader(io.StringIO(text), delimiter=delimiter)
        if row
    ]
    return parse_rows(rows, path.name), hashlib.sha256(data).hexdigest()
