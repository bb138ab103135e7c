"""WAL archive continuity along the timeline recovery follows (`checks.support.timelines`).

One reading of an archive, shared by the wal_archive check (gaps, the newest segment, the PITR
exposure a gap causes), the base_backups check (the recovery window: which backups have
continuous WAL to the newest segment) and the pitr drill (did recovery stop before the newest
segment): they cannot disagree about what the archive holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from checks.support.compression import CompressionError, inflated
from checks.support.stores import Store, StoredObject
from checks.support.timelines import MAX_HISTORY_BYTES, BadHistory, TimelinePath, follow
from checks.support.walnames import WalName, archive_file_name, parse_wal_name
from core.errors import CheckError

# What the primary says of its archive: wal_segment_size, the archiver's newest file and the WAL
# file it writes now (NULL on a standby, whose timeline and archiver are not the primary's).
SERVER_WAL_SQL = (
    "SELECT pg_size_bytes(current_setting('wal_segment_size')) AS size, last_archived_wal, "
    "CASE WHEN NOT pg_is_in_recovery() THEN pg_walfile_name(pg_current_wal_lsn()) END AS writing "
    "FROM pg_stat_archiver"
)


class Archived(NamedTuple):
    name: str
    wal: WalName
    obj: StoredObject


@dataclass
class ArchiveIndex:
    """An archive's files by kind: WAL by timeline and segment number (full segments and
    partial ones apart), backup labels, history files by timeline."""

    segments: dict[int, dict[int, StoredObject]] = field(default_factory=dict)
    partials: dict[int, dict[int, StoredObject]] = field(default_factory=dict)
    labels: list[WalName] = field(default_factory=list)
    histories: dict[int, StoredObject] = field(default_factory=dict)

    def current_timeline(self, writing: WalName | None = None) -> int:
        """The primary's own timeline (of the WAL file it writes) when known, else the highest
        with a history file or WAL in the archive."""
        if writing is not None:
            return writing.timeline
        return max([*self.histories, *self.segments, *self.partials], default=1)

    def without_history(self) -> list[int]:
        """Timelines above 1 that hold WAL but have no history file: recovery cannot reach them."""
        with_wal = {t for t in [*self.segments, *self.partials] if t > 1}
        return sorted(with_wal - set(self.histories))


def index_archive(objects: list[StoredObject], segment_size: int) -> ArchiveIndex:
    """One pass over the keys (100,000 in well under a second: no object per file but a name)."""
    index = ArchiveIndex()
    for obj in objects:
        wal = parse_wal_name(archive_file_name(obj.key), segment_size)
        if wal is None:
            continue
        if wal.kind == "segment":
            index.segments.setdefault(wal.timeline, {})[wal.segno] = obj  # type: ignore[index]
        elif wal.kind == "partial":
            index.partials.setdefault(wal.timeline, {})[wal.segno] = obj  # type: ignore[index]
        elif wal.kind == "history":
            index.histories[wal.timeline] = obj
        else:
            index.labels.append(wal)
    return index


@dataclass(frozen=True)
class Continuity:
    path: TimelinePath
    segments: int  # full segments on the path
    start_segno: int | None  # the newest base backup's start on the path, else the oldest segment
    newest: Archived | None  # the newest segment recovery reads
    missing: int
    gaps: list[tuple[int, int]]  # (first missing segno, last missing segno)
    before_first_gap: Archived | None  # the last segment PITR can replay to
    continuous_from: int | None  # from this segno on, every segment up to the newest is there
    base_backups: int  # backup labels on the path
    abandoned: int  # files of abandoned timelines, or of ancestors past their switch point
    without_history: list[int]

    def name(self, segno: int) -> str:
        return segment_name(self.path.timeline_of(segno), segno, self.path.segment_size)

    def recovers(self, wal_start: str) -> bool:
        """Whether a base backup starting in WAL file `wal_start` has continuous WAL from there to
        the newest segment, along the current timeline's path."""
        wal = parse_wal_name(wal_start, self.path.segment_size)
        return (
            wal is not None
            and wal.segno is not None
            and self.continuous_from is not None
            and wal.segno >= self.continuous_from
            and self.path.recovers_from(wal.timeline, wal.segno)
        )


def segment_name(timeline: int, segno: int, segment_size: int) -> str:
    per_id = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def _on_path(
    index: ArchiveIndex, path: TimelinePath
) -> tuple[dict[int, StoredObject], set[int], int]:
    """segno -> the file recovery reads, which of those are partial, and how many files are
    off the path: per timeline of the path, its files from its start to the next one's."""
    found: dict[int, StoredObject] = {}
    partial: set[int] = set()
    read = 0
    ends = [*path.begin_segnos[1:], None]
    for timeline, begin, end in zip(path.timelines, path.begin_segnos, ends, strict=True):
        for kind, is_partial in ((index.partials, True), (index.segments, False)):
            for segno, obj in kind.get(timeline, {}).items():
                if begin <= segno and (end is None or segno < end):
                    read += 1
                    found[segno] = obj  # a full segment over a partial one
                    (partial.add if is_partial else partial.discard)(segno)
    files = sum(map(len, index.segments.values())) + sum(map(len, index.partials.values()))
    return found, partial, files - read


def analyse(index: ArchiveIndex, path: TimelinePath) -> Continuity:
    """A pass over the files plus a sort: linear-logarithmic in the number of files."""
    on_path, partial, abandoned = _on_path(index, path)
    labels = [
        w.segno
        for w in index.labels
        if w.segno is not None and path.recovers_from(w.timeline, w.segno)
    ]
    abandoned += len(index.labels) - len(labels)
    without_history = index.without_history()

    def archived(segno: int) -> Archived:
        timeline = path.timeline_of(segno)
        name = segment_name(timeline, segno, path.segment_size)
        if segno in partial:
            return Archived(f"{name}.partial", WalName(timeline, "partial", segno), on_path[segno])
        return Archived(name, WalName(timeline, "segment", segno), on_path[segno])

    if not on_path:
        return Continuity(path, 0, None, None, 0, [], None, None, len(labels), abandoned,
                          without_history)  # fmt: skip
    ordered = sorted(on_path)
    start = max(labels) if labels else ordered[0]
    gaps: list[tuple[int, int]] = []
    previous = start - 1
    before_first_gap: int | None = None
    for segno in ordered:
        if segno < start:
            continue
        if segno > previous + 1:
            if not gaps and previous >= start:
                before_first_gap = previous
            gaps.append((previous + 1, segno - 1))
        previous = segno
    continuous_from = ordered[-1]
    for segno in reversed(ordered[:-1]):
        if segno != continuous_from - 1:
            break
        continuous_from = segno
    return Continuity(
        path=path,
        segments=len(on_path) - len(partial),
        start_segno=start,
        newest=archived(ordered[-1]),
        missing=sum(last - first + 1 for first, last in gaps),
        gaps=gaps,
        before_first_gap=None if before_first_gap is None else archived(before_first_gap),
        continuous_from=continuous_from,
        base_backups=len(labels),
        abandoned=abandoned,
        without_history=without_history,
    )


def history_reader(store: Store) -> Callable[[str], str]:
    """Reads a history file from the store (decompressed, bounded): its text."""

    def read(key: str) -> str:
        try:
            data = b"".join(inflated(key, store.chunks(key), MAX_HISTORY_BYTES))
        except CompressionError as exc:
            raise CheckError("query", f"store {store.url}: {exc}") from None
        return data.decode("utf-8", errors="replace")

    return read


def read_continuity(
    objects: list[StoredObject],
    segment_size: int,
    read: Callable[[str], str],
    writing: str | None = None,
) -> Continuity:
    """The archive's continuity along the current timeline (the primary's, when the WAL file it
    writes is given); CheckError naming a history file that cannot be read."""
    index = index_archive(objects, segment_size)
    current = index.current_timeline(parse_wal_name(writing, segment_size) if writing else None)
    histories = {timeline: obj.key for timeline, obj in index.histories.items()}
    try:
        path = follow(current, histories, read, segment_size)
    except BadHistory as exc:
        key = histories.get(current, f"{current:08X}.history")
        raise CheckError("query", f"{key}: not a timeline history file: {exc}") from None
    return analyse(index, path)
