"""Reading a plain SQL dump as SQL: where its statements end, where a psql meta-command would
start, where COPY data begins and ends, with every line bounded.

The scanner follows psql's own lexer where it matters (quotes, E'' escapes, quoted identifiers,
dollar quotes, nested comments, parentheses): a backslash outside all of them starts a
meta-command, a `;` outside them at depth 0 ends a statement. A dump is never given to psql (see
exporter.drills.plain_restore), so the scanner decides nothing about safety; it only finds what
pg_dump writes and names what it does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

NORMAL, SQUOTE, ESTRING, DQUOTE, DOLLAR, COMMENT = range(6)
_SPECIAL = re.compile(rb"['\"$\\;()]|--|/\*")
_DOLLAR_TAG = re.compile(rb"\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$")
_IDENT = re.compile(rb"[A-Za-z0-9_$\x80-\xff]")
_ESTRING_END = re.compile(rb"\\.|''|'", re.DOTALL)
_COMMENT_MARK = re.compile(rb"/\*|\*/")


class LineTooLong(Exception):
    """A line outside COPY data longer than the bound (the statement could not be held)."""


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    text: bytes  # with its newline; a piece of a longer line when `whole` is false
    whole: bool  # the end of the line is in this piece


def lines(blocks: Iterable[bytes], max_line: int) -> Iterator[Line]:
    """The lines of a stream, newline kept, none held longer than `max_line` bytes: a longer
    line comes in pieces (COPY data may pass them on; SQL refuses them)."""
    held = bytearray()
    number = 1
    for block in blocks:
        held += block
        start = 0
        while True:
            end = held.find(b"\n", start, start + max_line)
            if end >= 0:
                yield Line(number, bytes(held[start : end + 1]), True)
                number += 1
                start = end + 1
            elif len(held) - start >= max_line:
                yield Line(number, bytes(held[start : start + max_line]), False)
                start += max_line
            else:
                break
        del held[:start]
    if held:
        yield Line(number, bytes(held), True)


class Scanner:
    """psql's lexical state across lines."""

    def __init__(self) -> None:
        self.state = NORMAL
        self.tag = b""  # the dollar quote's tag, while in one
        self.comment_depth = 0
        self.parens = 0
        self.pending = False  # statement text since the last `;`

    @property
    def at_boundary(self) -> bool:
        """Between statements: nothing open, nothing unterminated."""
        return self.state == NORMAL and not self.pending and self.parens == 0

    def scan(self, text: bytes) -> int | None:
        """Advances over a line; the offset of a meta-command's backslash in it (its end is the
        line's end), or None."""
        pos = 0
        while pos < len(text):
            if self.state == NORMAL:
                found = _SPECIAL.search(text, pos)
                stop = found.start() if found else len(text)
                if text[pos:stop].strip():
                    self.pending = True
                if found is None:
                    return None
                pos, meta = self._normal(text, found)
                if meta:
                    return found.start()
            else:
                pos = self._quoted(text, pos)
        return None

    def _normal(self, text: bytes, found: re.Match[bytes]) -> tuple[int, bool]:
        mark, at = found[0], found.start()
        after = found.end()
        if mark == b"\\":
            return len(text), True
        if mark == b"--":
            return len(text), False
        if mark == b"/*":
            self.state, self.comment_depth = COMMENT, 1
            return after, False
        if mark == b";":
            if self.parens == 0:
                self.pending = False
            return after, False
        self.pending = True
        if mark == b"(":
            self.parens += 1
        elif mark == b")":
            self.parens = max(0, self.parens - 1)
        elif mark == b'"':
            self.state = DQUOTE
        elif mark == b"'":
            escaped = at > 0 and text[at - 1 : at] in (b"E", b"e") and not (
                at > 1 and _IDENT.match(text, at - 2)
            )
            self.state = ESTRING if escaped else SQUOTE
        elif mark == b"$" and not (at > 0 and _IDENT.match(text, at - 1)):
            tag = _DOLLAR_TAG.match(text, at)
            if tag:
                self.state, self.tag = DOLLAR, tag[0]
                return tag.end(), False
        return after, False

    def _quoted(self, text: bytes, pos: int) -> int:
        """Past the end of the quote or comment the scanner is in, or to the line's end."""
        if self.state in (SQUOTE, DQUOTE):
            quote = b"'" if self.state == SQUOTE else b'"'
            end = text.find(quote, pos)
            if end < 0:
                return len(text)
            if text[end + 1 : end + 2] == quote:  # doubled: part of the string
                return end + 2
            self.state = NORMAL
            return end + 1
        if self.state == ESTRING:
            while found := _ESTRING_END.search(text, pos):
                pos = found.end()
                if found[0] == b"'":
                    self.state = NORMAL
                    return pos
            return len(text)
        if self.state == DOLLAR:
            end = text.find(self.tag, pos)
            if end < 0:
                return len(text)
            self.state = NORMAL
            return end + len(self.tag)
        while found := _COMMENT_MARK.search(text, pos):
            pos = found.end()
            self.comment_depth += 1 if found[0] == b"/*" else -1
            if self.comment_depth == 0:
                self.state = NORMAL
                return pos
        return len(text)
