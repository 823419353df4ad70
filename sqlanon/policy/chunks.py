"""A policy's text cut into its tables' entries without parsing it, for an incremental
compile (sqlanon/plan/incremental.py): after a one-table edit, only the entries whose text
changed are read again, the others' lines left blank so that every location stays where it
was.

Only plain block-style text is cut: `tables:` at the start of a line, its entries one
indentation in, each entry's lines until the next line at that indentation or less. Anything
the cut could misread — anchors, aliases and merge keys (an entry could borrow another's
text), tabs, directives or document markers — returns None, and the caller reads the whole
file as before."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SECTION = re.compile(r"tables:[ ]*(#[^\n]*)?(?=\n|$)")
_MARGIN = re.compile(r"\n[^ #\n]")  # a line at the left margin: the next section
_LINE = re.compile(r"^( *)([^ \n#].*)$", re.M)  # a line neither blank nor a comment
_ENTRY = re.compile(r"([^ #'\"\-?:][^:#\n]*|'[^'\n]*'|\"[^\"\\\n]*\"):( |$)")
# an anchor or an alias (outside quotes or not: refused rather than risked), a merge key,
# a directive or a document marker
_SIGIL = re.compile(r"[&*][^\s,\]}]")
_UNSAFE = ("\t", "\r", "<<", "\n%", "\n---", "\n...")


@dataclass(frozen=True)
class Chunk:
    """One entry under `tables:`: its id as written (unquoted), its first line (1-based), its
    text's span [start, end) in characters and the digest of that text."""

    id: str
    line: int
    start: int
    end: int
    sha256: str


@dataclass(frozen=True)
class Cut:
    text: str
    chunks: tuple[Chunk, ...]
    header_sha256: str  # the text without the entries: what every entry reads too

    def blanked(self, keep: set[int]) -> str:
        """The text with every entry but those numbered in `keep` blanked, its line breaks
        kept so that every line stays where it was."""
        parts, at = [], 0
        for i, c in enumerate(self.chunks):
            if i not in keep:
                parts += [self.text[at : c.start], "\n" * self.text.count("\n", c.start, c.end)]
                at = c.end
        parts.append(self.text[at:])
        return "".join(parts)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cut_tables(text: str) -> Cut | None:
    """The entries of `tables:`, or None when the text is not plainly block-style there."""
    if any(u in "\n" + text[:4] or u in text for u in _UNSAFE):
        return None
    for m in _SIGIL.finditer(text):  # where `&` or `*` could start an anchor or an alias
        if m.start() == 0 or text[m.start() - 1] in " \n,[{:-":
            return None
    heads = [m for m in _SECTION.finditer(text) if m.start() == 0 or text[m.start() - 1] == "\n"]
    if len(heads) != 1 or heads[0].end() >= len(text):
        return None
    first = heads[0].end() + 1
    after = _MARGIN.search(text, first - 1)
    end = after.start() + 1 if after else len(text)
    lines = _LINE.finditer(text[first:end])
    indent = None
    starts: list[tuple[int, str]] = []
    for m in lines:
        width = len(m.group(1))
        if indent is None:
            indent = width
        if width < indent:
            return None
        if width == indent:
            e = _ENTRY.match(m.group(2))
            if e is None:
                return None
            key = e.group(1).strip()
            starts.append((first + m.start(), key[1:-1] if key[:1] in "'\"" else key))
    if not starts or len({k for _, k in starts}) != len(starts):
        return None
    chunks = []
    line = text.count("\n", 0, starts[0][0]) + 1
    for n, (at, key) in enumerate(starts):
        stop = starts[n + 1][0] if n + 1 < len(starts) else end
        chunks.append(Chunk(key, line, at, stop, _sha(text[at:stop])))
        line += text.count("\n", at, stop)
    header = text[: chunks[0].start] + text[end:]
    return Cut(text, tuple(chunks), _sha(header))
