"""Plain SQL dumps (`pg_dump > x.sql`, `pg_dump | gzip > x.sql.gz`): read whole to verify.

A plain dump has no table of contents for pg_restore to read; what proves it whole is that it
decompresses to its end (a truncated gzip, zstd or lz4 stream is named) and that pg_dump's
closing line, `-- PostgreSQL database dump complete`, is there: pg_dump writes it last, so a
dump cut short, or one whose pg_dump failed midway, lacks it.
"""

from __future__ import annotations

import time

from checks.support.compression import COMPRESSED_SUFFIXES, CompressionError, inflated
from checks.support.stores import Store

PLAIN_SUFFIXES = tuple([".sql", *(f".sql{suffix}" for suffix in COMPRESSED_SUFFIXES)])
OPENING = b"-- PostgreSQL database dump"
CLOSING = b"-- PostgreSQL database dump complete"
_HEAD, _TAIL = 4096, 4096


def is_plain(key: str) -> bool:
    return key.endswith(PLAIN_SUFFIXES)


class PlainReadTimedOut(Exception):
    pass


def read_plain(store: Store, key: str, deadline: float, cap: int) -> tuple[bool, str, int]:
    """(whole, why, bytes read from the store): decompressed to its end (at most `cap` bytes:
    more is a bomb, backups.max_uncompressed), opening and closing lines there."""
    read = 0
    head = b""
    tail = b""

    def counted() -> object:
        nonlocal read
        for block in store.chunks(key):
            read += len(block)
            if time.monotonic() > deadline:
                raise PlainReadTimedOut(key)
            yield block

    try:
        for block in inflated(key, counted(), cap):  # type: ignore[arg-type]
            if len(head) < _HEAD:
                head += block[: _HEAD - len(head)]
            tail = (tail + block[-_TAIL:])[-_TAIL:]
    except CompressionError as exc:
        why = str(exc).removeprefix(f"{key}: ")
        if "more than" in why:
            why += " (backups.max_uncompressed, backups.max_inflation)"
        return False, why, read
    if OPENING not in head:
        return False, "not a pg_dump plain SQL dump (no '-- PostgreSQL database dump' header)", read
    if CLOSING not in tail:
        return False, "incomplete: pg_dump's closing line is missing (cut short?)", read
    return True, "full read ok (plain SQL)", read
