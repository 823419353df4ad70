"""Line layout of emitted statements: no line longer than MAX_LINE where a break can go.

Reviewers read the generated SQL in a pull request's diff, where a 1,000-character line is
unreadable. Templates put clauses and select items on their own lines; what they cannot
foresee is how long a line becomes once fragments are nested into it. This pass breaks such
lines, and only at a single space between two tokens of the dialect's own tokenizer (sqlglot),
so it never touches a string literal, a quoted name or a comment (a one-line block comment
between two tokens may move to the next line whole): the statement's tokens —
its meaning — are unchanged, which tests/test_layout_sql.py checks on every dialect.

Where a line is broken: at the shallowest parenthesis depth among the spaces that keep the
first part within the limit (rightmost of those), so an expression's outer structure stays on
one line and its arguments move down; the continuation is indented by its depth. A line with
no usable space (one long literal) stays as it is. Deterministic: same text in, same out.
"""

from __future__ import annotations

import bisect
import itertools
import re
from functools import cache, lru_cache

import sqlglot
from sqlglot.tokenizer_core import TokenType

MAX_LINE = 120
# lines longer than this (an inline hierarchy of thousands of values) stay as written: the
# pure-Python tokenizer takes about 5 s per MB, and no reviewer reads such a line anyway
MAX_WRAP_CHARS = 200_000
_NOTE = re.compile(r" /\*[^\n]*?\*/ ?")
_OPEN = (TokenType.L_PAREN, TokenType.L_BRACKET)
_CLOSE = (TokenType.R_PAREN, TokenType.R_BRACKET)
# spaces before these tokens are the preferred breaks at equal depth
_LEADING = (TokenType.AND, TokenType.OR, TokenType.DPIPE, TokenType.WHEN, TokenType.ELSE)
# a line may break only after a comma or an operand's end, so that an operator or keyword
# starts the next line and no line ends in one; and never before AS (alias or CAST's type)
_BREAK_AFTER = (
    TokenType.COMMA,
    TokenType.IDENTIFIER,
    TokenType.VAR,
    TokenType.STRING,
    TokenType.NUMBER,
    TokenType.R_PAREN,
    TokenType.R_BRACKET,
    TokenType.END,
    TokenType.NULL,
    TokenType.TRUE,
    TokenType.FALSE,
)


@cache
def _dialect(name: str) -> sqlglot.Dialect:
    return sqlglot.Dialect.get_or_raise(name)


def wrap(text: str, sqlglot_dialect: str, limit: int = MAX_LINE) -> str:
    """`text` with its long lines broken at token gaps (see the module docstring). Each long
    line is tokenized on its own: no token of generated SQL spans lines (policy text with a
    line break is refused, and every comment sqlanon writes is one line), so the cost is the
    long lines' length, not the statement's."""
    lines = text.split("\n")
    if max(map(len, lines)) <= limit:
        return text
    out: list[str] = []
    for line in lines:
        if len(line) <= limit or len(line) > MAX_WRAP_CHARS:
            out.append(line)
        else:
            out.extend(_broken(line, sqlglot_dialect, limit))
    return "\n".join(out)


@lru_cache(maxsize=8192)
def _broken(line: str, sqlglot_dialect: str, limit: int) -> tuple[str, ...]:
    """One long line broken: the same line recurs across views (a transform on a column of
    the same name), and tokenizing is most of wrapping's cost — 1,137 long lines of 200
    generated views held 155 distinct ones (benchmarks/compile_scale.py)."""
    return tuple(_break(line, _gaps(line, sqlglot_dialect), limit))


def _gaps(line: str, sqlglot_dialect: str) -> dict[int, tuple[int, bool]]:
    """Each breakable space of a line: its offset → (paren depth there, preferred)."""
    tokens = _dialect(sqlglot_dialect).tokenize(line)
    gaps: dict[int, tuple[int, bool]] = {}
    depth = 0
    for tok, nxt in itertools.pairwise(tokens):
        if tok.token_type in _OPEN:
            depth += 1
        elif tok.token_type in _CLOSE:
            depth -= 1
        if tok.token_type not in _BREAK_AFTER or nxt.token_type == TokenType.ALIAS:
            continue
        between = line[tok.end + 1 : nxt.start]
        if between == " ":
            gaps[tok.end + 1] = (depth, nxt.token_type in _LEADING)
        elif _NOTE.fullmatch(between):  # a note (Dialect.noted): break before or after it
            gaps[tok.end + 1] = (depth, nxt.token_type in _LEADING)
            if between.endswith("*/ "):
                gaps[nxt.start - 1] = gaps[tok.end + 1]
    if tokens and _NOTE.fullmatch(line[tokens[-1].end + 1 :]):  # a note ending the line
        gaps[tokens[-1].end + 1] = (depth, False)
    return gaps


def _break(line: str, gaps: dict[int, tuple[int, bool]], limit: int) -> list[str]:
    indent = len(line) - len(line.lstrip(" "))
    spots = sorted((i, *gap) for i, gap in gaps.items() if i >= indent)
    if not spots:
        return [line]
    positions = [s[0] for s in spots]
    base = min(d for _, d, _ in spots)
    lines: list[str] = []
    start, head = 0, ""  # the current piece starts at line[start:], printed after `head`
    while len(line) - start > limit - len(head):
        first = start + (indent if not lines else 0)
        lo = bisect.bisect_right(positions, first)
        hi = bisect.bisect_right(positions, start + limit - len(head))
        if lo >= len(spots):
            break
        # within the limit the shallowest (preferred, rightmost) space; else the first beyond
        window = spots[lo:hi] or spots[lo : lo + 1]
        cut, depth, _ = min(window, key=lambda s: (s[1], not s[2], -s[0]))
        lines.append(head + line[start:cut])
        head = " " * (indent + 4 + 2 * max(depth - base, 0))
        start = cut + 1
    lines.append(head + line[start:] if lines else line)
    return lines
