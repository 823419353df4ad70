"""Located, user-facing errors: every policy mistake names file:line:column, what was expected
and, where one fits, a suggestion. Nothing here ever prints a traceback."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_SHOWN = 100  # errors rendered; the rest are counted
LINE_WIDTH = 120  # characters of a source line shown under an error


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    loc: Location | None
    message: str
    expected: str | None = None
    hint: str | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.loc is None:
            return ("", 0, 0, self.message)
        return (self.loc.file, self.loc.line, self.loc.column, self.message)

    def render(self, source_line: str | None = None) -> str:
        where = f"{self.loc}: " if self.loc else ""
        lines = [f"{where}error: {self.message}"]
        if source_line is not None and self.loc is not None:
            shown, caret = _window(source_line.rstrip("\r\n").replace("\t", " "), self.loc.column)
            lines.append(f"    {shown}")
            lines.append("    " + " " * caret + "^")
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class PolicyError(Exception):
    """Raised with every diagnostic found, never only the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__(f"{len(self.diagnostics)} error(s) in policy")

    def render(self) -> str:
        cache: dict[str, list[str]] = {}
        out = []
        for d in self.diagnostics[:MAX_SHOWN]:
            line = None
            if d.loc is not None:
                if d.loc.file not in cache:
                    cache[d.loc.file] = _read_lines(d.loc.file)
                lines = cache[d.loc.file]
                if 0 < d.loc.line <= len(lines):
                    line = lines[d.loc.line - 1]
            out.append(d.render(line))
        files = {d.loc.file for d in self.diagnostics if d.loc}
        n = len(self.diagnostics)
        if n > MAX_SHOWN:
            out.append(f"... and {n - MAX_SHOWN} more errors (fix the first ones and rerun)")
        nfiles = len(files) or 1
        out.append(f"{n} error{'s' if n != 1 else ''} in {nfiles} file{'s' if nfiles > 1 else ''}")
        return "\n".join(out)


def _window(line: str, column: int) -> tuple[str, int]:
    """The part of a long source line around `column` (1-based), and the caret's offset in it:
    a generated one-line policy must not print megabytes per error."""
    at = max(column - 1, 0)
    if len(line) <= LINE_WIDTH:
        return line, at
    start = max(0, min(at - LINE_WIDTH // 2, len(line) - LINE_WIDTH))
    shown = line[start : start + LINE_WIDTH]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + LINE_WIDTH < len(line) else ""
    return prefix + shown + suffix, at - start + len(prefix)


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readlines()
    except OSError:
        return []


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for the closest choice, or None when nothing is close."""
    if not isinstance(word, str):
        return None
    pool = sorted(set(choices))
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f"did you mean '{lowered[word.lower()]}'?"
    match = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def one_of(choices: Iterable[str]) -> str:
    return "one of " + ", ".join(sorted(choices))


def display_path(path: str | os.PathLike[str]) -> str:
    """How a file is named in messages and output: relative to the working directory when it
    lies below it, so that output does not depend on where a checkout sits on disk."""
    p = os.path.abspath(path)
    cwd = os.getcwd()
    if p == cwd or p.startswith(cwd.rstrip(os.sep) + os.sep):
        return Path(os.path.relpath(p, cwd)).as_posix()
    return Path(p).as_posix()
