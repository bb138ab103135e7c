"""WAL file names: timeline and segment number, for a cluster's own wal_segment_size."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_SEGMENT = re.compile(
    r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial|\.[0-9A-F]{8}\.backup)?$"
)
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")

Kind = Literal["segment", "partial", "backup", "history"]


@dataclass(frozen=True)
class WalName:
    timeline: int
    kind: Kind
    segno: int | None  # None for a timeline history file


def segments_per_xlogid(segment_size: int) -> int:
    return 0x100000000 // segment_size


def parse_wal_name(name: str, segment_size: int) -> WalName | None:
    """The parts of `name`, or None if it is not a WAL archive file name."""
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
