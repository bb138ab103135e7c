"""Timelines: which archived WAL files recovery follows, read from the timeline history files.

Every promotion (a failover, the end of a PITR) starts a new timeline and archives its
`<TLI>.history`: one line per ancestor, `<parent TLI> <LSN where it ended> <reason>`. Recovery
to the newest point (`recovery_target_timeline = 'latest'`) follows the newest timeline's history:
segment number `s` is read from the newest timeline of that history whose start is at or before
`s` (PostgreSQL's `XLogFileReadAnyTLI`). So the WAL a recovery needs is, per timeline, its
segments up to its switch point, then the next timeline's; what an abandoned timeline (or an
ancestor past its switch point) holds is neither evidence of continuity nor the newest segment.

The current timeline is the primary's own (of the WAL file it writes) when drwatch can ask it,
else the highest timeline with a history file or WAL in the archive. Not the archiver's
`last_archived_wal`: right after a promotion it may name a file of the parent timeline. A timeline
above 1 that holds WAL but has no history file cannot be followed: PostgreSQL probes the history
files of the timelines after the backup's in turn and stops at the first one missing.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from checks.support.walnames import WalName

MAX_HISTORY_BYTES = 1 << 20  # a history file holds a line per ancestor timeline


@dataclass(frozen=True)
class Switch:
    timeline: int  # the timeline that ended
    end: int  # the WAL position where it ended and its child began


class BadHistory(ValueError):
    """A history file that is not one (not PostgreSQL's `<tli>\\t<lsn>\\t<reason>` lines)."""


def parse_lsn(text: str) -> int:
    high, slash, low = text.partition("/")
    if not slash:
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def parse_history(text: str) -> tuple[Switch, ...]:
    """The ancestors a history file lists, oldest first (PostgreSQL's `readTimeLineHistory`)."""
    switches: list[Switch] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        try:
            switch = Switch(int(fields[0]), parse_lsn(fields[1]))
        except (IndexError, ValueError):
            raise BadHistory(f"line {number} is not '<timeline> <LSN> <reason>'") from None
        if switches and (switch.timeline <= switches[-1].timeline or switch.end < switches[-1].end):
            raise BadHistory(f"line {number}: timelines and positions must increase")
        switches.append(switch)
    return tuple(switches)


@dataclass(frozen=True)
class TimelinePath:
    """The timelines recovery to the newest point goes through, and where each began."""

    current: int
    switches: tuple[Switch, ...]  # the current timeline's ancestors, oldest first
    segment_size: int

    # Called for every file of an archive: what they need is worked out once.
    @cached_property
    def timelines(self) -> tuple[int, ...]:
        return (*(s.timeline for s in self.switches), self.current)

    def begins(self) -> list[tuple[int, int]]:
        """(timeline, the WAL position it began at), oldest first; the oldest begins at 0."""
        starts = [0, *(s.end for s in self.switches)]
        return list(zip(self.timelines, starts, strict=True))

    @cached_property
    def begin_segnos(self) -> list[int]:
        return [position // self.segment_size for _, position in self.begins()]

    def timeline_of(self, segno: int) -> int:
        """The timeline whose file recovery reads for segment number `segno`."""
        if not self.switches:
            return self.current
        index = bisect.bisect_right(self.begin_segnos, segno) - 1
        return self.timelines[max(index, 0)]

    def needs(self, wal: WalName) -> bool:
        """Whether recovery along this path reads this file (a segment or a partial one)."""
        return wal.segno is not None and self.timeline_of(wal.segno) == wal.timeline

    def recovers_from(self, timeline: int, segno: int) -> bool:
        """Whether a base backup that starts in (timeline, segno) leads to the current timeline:
        its timeline is on the path and it started before that timeline's switch point."""
        if timeline not in self.timelines:
            return False
        index = self.timelines.index(timeline)
        begins = self.begin_segnos
        if segno < begins[index]:
            return False
        return index == len(self.switches) or segno <= self.switches[index].end // self.segment_size


def follow(
    current: int,
    histories: dict[int, str],
    read: Callable[[str], str],
    segment_size: int,
) -> TimelinePath:
    """The path to `current`, from its history file (`histories`: timeline -> the file's key,
    `read`: the file's text); a timeline without one (1, or a missing file) has no ancestors."""
    key = histories.get(current)
    switches = parse_history(read(key)) if key is not None and current > 1 else ()
    if switches and switches[-1].timeline >= current:
        listed = switches[-1].timeline
        raise BadHistory(f"the history of timeline {current} lists timeline {listed}")
    return TimelinePath(current, switches, segment_size)
