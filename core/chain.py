"""Hash-chained record lines: each line holds the SHA-256 of the line before it (`prev`), so a
record edited or deleted after it was written is found by whoever reads the file later (the
evidence report says where). The first line kept has nothing to check against: its predecessor
may have been pruned by age or size, which is not tampering."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

TAIL_BYTES = 1 << 20  # a line is at most this long (the journal's own bound)


def digest(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def last_line(handle: IO[bytes]) -> bytes | None:
    """The file's last complete line (the handle is read from its end)."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - TAIL_BYTES))
    lines = handle.read().splitlines()
    return lines[-1] if lines else None


def chain(previous: bytes | None, objects: list[dict[str, Any]]) -> bytes:
    """The objects as lines, each with `prev`: the digest of the line before it."""
    out = b""
    prev = digest(previous) if previous else ""
    for obj in objects:
        line = json.dumps({**obj, "prev": prev}).encode()
        out += line + b"\n"
        prev = digest(line)
    return out


@dataclass
class ChainCheck:
    lines: int = 0
    unchained: int = 0  # lines written before the chain (no `prev` and none before had one)
    # (line number, why) of each place the chain breaks: a line edited, inserted or deleted
    breaks: list[tuple[int, str]] = field(default_factory=list)


def check(path: Path) -> ChainCheck:
    """Every link of the file's chain."""
    result = ChainCheck()
    try:
        with open(path, "rb") as handle:
            previous: bytes | None = None
            chained = False
            for number, line in enumerate(handle, 1):
                result.lines += 1
                prev = _prev(line)
                if prev is None:
                    if chained:
                        result.breaks.append((number, "a line without its link"))
                    else:
                        result.unchained += 1
                elif previous is not None and chained and prev != digest(previous):
                    result.breaks.append((number, "the line before it was changed or removed"))
                chained = chained or prev is not None
                previous = line
    except FileNotFoundError:
        pass
    return result


def _prev(line: bytes) -> str | None:
    try:
        value = json.loads(line).get("prev")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
