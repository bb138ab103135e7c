"""WAL file names: timeline and segment number, for a cluster's own wal_segment_size, and the
PostgreSQL name a store's key holds whatever a tool added around it."""

from __future__ import annotations

import re
import struct
from typing import Literal, NamedTuple

_SEGMENT = re.compile(
    r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial|\.[0-9A-F]{8}\.backup)?$"
)
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")

Kind = Literal["segment", "partial", "backup", "history"]


class WalName(NamedTuple):  # a tuple: made for every key of an archive
    timeline: int
    kind: Kind
    segno: int | None  # None for a timeline history file


def segments_per_xlogid(segment_size: int) -> int:
    return 0x100000000 // segment_size


_HEX = frozenset("0123456789ABCDEF")


def parse_wal_name(name: str, segment_size: int) -> WalName | None:
    """The parts of `name`, or None if it is not a WAL archive file name."""
    if len(name) == 24 and _HEX.issuperset(name):  # a segment: most names, without a regex
        per_id = segments_per_xlogid(segment_size)
        return WalName(
            int(name[:8], 16), "segment", int(name[8:16], 16) * per_id + int(name[16:], 16)
        )
    m = _SEGMENT.match(name)
    if m:
        timeline, log, seg, suffix = int(m[1], 16), int(m[2], 16), int(m[3], 16), m[4]
        kind: Kind = "segment"
        if suffix == ".partial":
            kind = "partial"
        elif suffix:
            kind = "backup"
        return WalName(timeline, kind, log * segments_per_xlogid(segment_size) + seg)
    m = _HISTORY.match(name)
    if m:
        return WalName(int(m[1], 16), "history", None)
    return None


def archived_end_lsn(name: str, segment_size: int) -> int | None:
    """The WAL position up to which an archive holding `name` as its newest file is complete.

    A full segment (or the `.backup` label written after its start segment) covers its segment; a
    `.partial` segment covers none of it for sure; a `.history` file says nothing about positions.
    """
    wal = parse_wal_name(name, segment_size)
    if wal is None or wal.segno is None:
        return None
    if wal.kind == "partial":
        return wal.segno * segment_size
    return (wal.segno + 1) * segment_size


# XLogLongPageHeaderData, the header of a segment's first page (access/xlog_internal.h): the
# standard header (xlp_magic u16, xlp_info u16, xlp_tli u32, xlp_pageaddr u64, xlp_rem_len u32,
# padded to 24 bytes), then xlp_sysid u64, xlp_seg_size u32, xlp_xlog_blcksz u32.
LONG_PAGE_HEADER_BYTES = 40
_XLP_LONG_HEADER = 0x0002
_MIN_SEGMENT, _MAX_SEGMENT = 1 << 20, 1 << 30


def segment_size_in_header(head: bytes) -> int | None:
    """The wal_segment_size a segment's first page header states (little-endian, as written on
    the platforms PostgreSQL ships for), or None if `head` is no such header."""
    if len(head) < LONG_PAGE_HEADER_BYTES:
        return None
    magic, info = struct.unpack_from("<HH", head, 0)
    seg_size, block_size = struct.unpack_from("<II", head, 32)
    if magic & 0xFF00 != 0xD100 or not info & _XLP_LONG_HEADER:
        return None
    if not _MIN_SEGMENT <= seg_size <= _MAX_SEGMENT or seg_size & (seg_size - 1):
        return None
    return seg_size if block_size and block_size & (block_size - 1) == 0 else None


# What archive tools append to WAL file names when they compress.
COMPRESSION_SUFFIXES = (".gz", ".lz4", ".zst", ".br", ".bz2", ".xz", ".lzma", ".snappy")


_COMPRESSION_EXTENSIONS = frozenset(suffix[1:] for suffix in COMPRESSION_SUFFIXES)


def strip_compression(name: str) -> str:
    dot = name.rfind(".")
    return name[:dot] if dot > 0 and name[dot + 1 :] in _COMPRESSION_EXTENSIONS else name


def archive_file_name(key: str) -> str:
    """The PostgreSQL file name a key holds, whatever the tool added (directories, a hash, a
    compression suffix): `000000010000000000000003`, `00000002.history`, `...0028.backup`.
    Called for every key of an archive: slices, no regex, no tuples."""
    name = strip_compression(key[key.rfind("/") + 1 :])
    # a "-<sha1>" of the content a tool appends: PostgreSQL's own names never hold a "-"
    if len(name) > 41 and name[-41] == "-" and name[-40:].isalnum():
        return name[:-41]
    return name


def compressed(key: str) -> bool:
    return key.endswith(COMPRESSION_SUFFIXES)
