"""WAL archive continuity in the store: is every segment since the newest base backup there?

The store may be written by an `archive_command` that copies, by pgBackRest, WAL-G or barman
(`checks.support.wal_layouts`): configured, or detected from the names.

WAL-G's `wal-verify integrity` is the reference. Names are parsed for timeline and segment number
with the cluster's own wal_segment_size; a timeline switch (a `.history` file, the old timeline's
`.partial` and the new timeline's segments) is not a gap. A gap caps point-in-time recovery at the
last segment before it. Also checks the archiver's word: pg_stat_archiver can report success for
a file that never arrived.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.pg import fetch_one, session
from checks.support.stores import Store, StoredObject
from checks.support.wal_layouts import archive_file_name, archive_files, compressed, detect
from checks.support.walnames import WalName, parse_wal_name
from core.config.postgres import PostgresConfig
from core.config.stores import BackupsConfig
from core.durations import format_duration
from core.errors import CheckError
from core.humanize import count
from core.metrics import gauge

NAME = "wal_archive"
MAX_NAMED_GAPS = 5

WAL_ARCHIVE_SEGMENTS = gauge("drwatch_wal_archive_segments", "WAL segments in the archive store.")
WAL_ARCHIVE_MISSING_SEGMENTS = gauge(
    "drwatch_wal_archive_missing_segments",
    "Segments missing between the newest base backup's start and the newest archived segment.",
)
WAL_ARCHIVE_NEWEST_SEGMENT_TIMESTAMP_SECONDS = gauge(
    "drwatch_wal_archive_newest_segment_timestamp_seconds",
    "When the newest archived segment was written to the store.",
)
WAL_ARCHIVE_TIMELINE = gauge(
    "drwatch_wal_archive_timeline", "Timeline of the newest archived segment."
)
WAL_ARCHIVE_BASE_BACKUPS = gauge(
    "drwatch_wal_archive_base_backups", "Base backup labels (.backup files) in the archive store."
)
WAL_ARCHIVE_LAST_ARCHIVED_PRESENT = gauge(
    "drwatch_wal_archive_last_archived_present",
    "1 if pg_stat_archiver.last_archived_wal is in the store, 0 if the archiver reported a "
    "file that is not there.",
)
WAL_SEGMENT_SIZE_BYTES_USED = gauge(
    "drwatch_wal_segment_size_bytes_used",
    "The wal_segment_size the names were parsed with (from PostgreSQL, config or the files).",
)

METRICS = (
    WAL_ARCHIVE_SEGMENTS,
    WAL_ARCHIVE_MISSING_SEGMENTS,
    WAL_ARCHIVE_NEWEST_SEGMENT_TIMESTAMP_SECONDS,
    WAL_ARCHIVE_TIMELINE,
    WAL_ARCHIVE_BASE_BACKUPS,
    WAL_ARCHIVE_LAST_ARCHIVED_PRESENT,
    WAL_SEGMENT_SIZE_BYTES_USED,
)


@dataclass(frozen=True)
class Archived:
    name: str
    wal: WalName
    obj: StoredObject


@dataclass(frozen=True)
class Continuity:
    segments: int
    start_segno: int | None
    newest: Archived | None
    missing: int
    gaps: list[tuple[int, int]]  # (first missing segno, last missing segno)
    before_first_gap: Archived | None  # the last segment PITR can replay to
    base_backups: int


def segment_name(timeline: int, segno: int, segment_size: int) -> str:
    per_id = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def analyse(objects: list[StoredObject], segment_size: int) -> Continuity:
    """One pass over the names plus a sort: linear-logarithmic in the number of files."""
    segments: dict[int, Archived] = {}  # segno -> the newest-timeline file holding it
    starts: list[int] = []
    for obj in objects:
        name = archive_file_name(obj.key)
        wal = parse_wal_name(name, segment_size)
        if wal is None or wal.segno is None:
            continue
        if wal.kind == "backup":
            starts.append(wal.segno)
            continue
        seen = segments.get(wal.segno)
        if seen is None or (wal.timeline, wal.kind == "segment") > (
            seen.wal.timeline,
            seen.wal.kind == "segment",
        ):
            segments[wal.segno] = Archived(name, wal, obj)
    if not segments:
        return Continuity(0, None, None, 0, [], None, len(starts))
    ordered = sorted(segments)
    start = max(starts) if starts else ordered[0]
    newest = segments[ordered[-1]]
    gaps: list[tuple[int, int]] = []
    previous = start - 1
    before_first_gap: Archived | None = None
    for segno in ordered:
        if segno < start:
            continue
        if segno > previous + 1:
            if not gaps and previous >= start:
                before_first_gap = segments[previous]
            gaps.append((previous + 1, segno - 1))
        previous = segno
    missing = sum(last - first + 1 for first, last in gaps)
    return Continuity(
        segments=sum(1 for a in segments.values() if a.wal.kind == "segment"),
        start_segno=start,
        newest=newest,
        missing=missing,
        gaps=gaps,
        before_first_gap=before_first_gap,
        base_backups=len(starts),
    )


def infer_segment_size(objects: list[StoredObject]) -> int | None:
    """Uncompressed segments are exactly wal_segment_size bytes: the most common such size."""
    sizes = [
        o.size
        for o in objects
        if not compressed(o.key)
        and len(archive_file_name(o.key)) == 24
        and o.size >= 1024 * 1024
        and o.size & (o.size - 1) == 0
    ]
    return statistics.mode(sizes) if sizes else None


class WalArchiveCheck(Check[None]):
    def __init__(
        self,
        config: BackupsConfig,
        store: Store,
        pg: PostgresConfig | None,
    ) -> None:
        super().__init__(None)
        self.config = config
        self.store = store
        self.pg = pg

    def _ask_postgres(self) -> tuple[int | None, str | None, bool]:
        if self.pg is None:
            return None, None, False
        with session(self.pg) as conn:
            row = fetch_one(
                conn,
                "SELECT pg_size_bytes(current_setting('wal_segment_size')) AS size, "
                "last_archived_wal, pg_is_in_recovery() AS standby FROM pg_stat_archiver",
                what="pg_stat_archiver",
            )
        return int(row["size"]), row["last_archived_wal"], bool(row["standby"])

    def run(self) -> Observation:
        # PostgreSQL first, then the store: a file archived in between is then in the listing.
        pg_size, last_archived, standby = self._ask_postgres()
        listed = list(self.store.list())
        layout = detect(listed) if self.config.wal_layout == "auto" else self.config.wal_layout
        objects = archive_files(listed, layout)
        segment_size = self.config.wal_segment_size or pg_size or infer_segment_size(objects)
        if segment_size is None:
            raise CheckError(
                "config",
                f"store {self.store.url}: cannot tell wal_segment_size (no postgres section, no "
                "backups.wal_segment_size, no uncompressed segment to measure)",
            )
        result = analyse(objects, segment_size)
        now = time.time()
        obs = Observation(Status.OK, "")
        obs.add(WAL_ARCHIVE_SEGMENTS, result.segments)
        obs.add(WAL_ARCHIVE_MISSING_SEGMENTS, result.missing)
        obs.add(WAL_ARCHIVE_BASE_BACKUPS, result.base_backups)
        obs.add(WAL_SEGMENT_SIZE_BYTES_USED, segment_size)
        obs.values.update(
            segments=result.segments, missing_segments=result.missing, wal_layout=layout
        )
        how = f"{layout} layout" + (", detected" if self.config.wal_layout == "auto" else "")
        if result.newest is None:
            obs.status = Status.CRITICAL
            obs.summary = f"no WAL segment in {self.store.url} ({how})"
            return obs
        newest = result.newest
        obs.add(WAL_ARCHIVE_NEWEST_SEGMENT_TIMESTAMP_SECONDS, newest.obj.modified)
        obs.add(WAL_ARCHIVE_TIMELINE, newest.wal.timeline)
        obs.values.update(
            newest_segment=newest.name, newest_segment_age_seconds=now - newest.obj.modified
        )
        problems = self._gaps(obs, result, segment_size, now)
        if last_archived and not standby:
            present = any(archive_file_name(o.key) == last_archived for o in objects)
            obs.add(WAL_ARCHIVE_LAST_ARCHIVED_PRESENT, present)
            obs.values["last_archived_present"] = present
            if not present:
                problems.append(
                    f"the archiver reported {last_archived} archived, but it is not in the store"
                )
        obs.status = Status.CRITICAL if problems else Status.OK
        start = segment_name(newest.wal.timeline, result.start_segno or 0, segment_size)
        base = f"{count(result.segments, 'segment')} since {start} ({how})"
        obs.summary = "; ".join(
            [
                f"{base}, newest {newest.name} {format_duration(now - newest.obj.modified)} old",
                *problems,
            ]
        )
        return obs

    @staticmethod
    def _gaps(obs: Observation, result: Continuity, segment_size: int, now: float) -> list[str]:
        """Names the gaps (a few of them) and caps PITR at the last segment before the first."""
        if not result.gaps or result.newest is None:
            return []
        timeline = result.newest.wal.timeline
        names = [
            segment_name(timeline, first, segment_size)
            + ("" if last == first else f"..{segment_name(timeline, last, segment_size)}")
            for first, last in result.gaps[:MAX_NAMED_GAPS]
        ]
        more = len(result.gaps) - MAX_NAMED_GAPS
        obs.values["missing"] = ", ".join(names)
        # Recovery replays up to the gap: what came after it is at risk.
        if result.before_first_gap is not None:
            obs.exposures["pitr"] = now - result.before_first_gap.obj.modified
        return [
            f"{count(result.missing, 'segment')} missing: {', '.join(names)}"
            + (f" and {more} more gaps" if more > 0 else "")
        ]


def _plan(context: BuildContext) -> Planned | None:
    backups = context.target.backups
    if backups is None or not backups.wal_store:
        return None
    check = WalArchiveCheck(backups, context.store(backups.wal_store), context.target.postgres)
    # Listing is cheap next to a dump's verification: a tighter deadline, same interval.
    return Planned(check, backups.interval, min(backups.timeout, backups.interval))


DEFINITION = CheckDef(
    name=NAME,
    section="backups",
    source="the WAL store",
    tells="segments missing between the newest base backup's start and the newest segment "
    "(timelines, `.partial`, `.history`, `.backup`, compressed names understood; plain copies, "
    "pgBackRest, WAL-G and barman layouts), the newest "
    "segment's age, whether the archiver's `last_archived_wal` really is in the store; a gap caps "
    "PITR",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
