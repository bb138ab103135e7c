"""WAL archive continuity in the store: is every segment since the newest base backup there?

The store may be written by an `archive_command` that copies, by pgBackRest, WAL-G or barman
(`checks.backup_tools`): configured, or detected from the names.

WAL-G's `wal-verify integrity` is the reference. Names are parsed for timeline and segment number
with the cluster's own wal_segment_size; a timeline switch (a `.history` file, the old timeline's
`.partial` and the new timeline's segments) is not a gap. A gap caps point-in-time recovery at the
last segment before it. Also checks the archiver's word: pg_stat_archiver can report success for
a file that never arrived.
"""

from __future__ import annotations

import statistics
import time

from checks.backup_tools.registry import archive_files, wal_layout
from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.compression import CompressionError, read_prefix
from checks.support.continuity import (
    SERVER_WAL_SQL,
    Continuity,
    history_reader,
    read_continuity,
)
from checks.support.pg import check_session, fetch_one
from checks.support.stores import Store, StoredObject
from checks.support.timelines import format_lsn
from checks.support.walnames import (
    LONG_PAGE_HEADER_BYTES,
    archive_file_name,
    compressed,
    segment_size_in_header,
)
from core.config.postgres import PostgresConfig
from core.config.stores import BackupsConfig
from core.durations import age_of
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
    "drwatch_wal_archive_timeline",
    "The current timeline: the primary's own, else the highest with a history file or WAL in "
    "the store.",
)
WAL_ARCHIVE_TIMELINE_START_POSITION_BYTES = gauge(
    "drwatch_wal_archive_timeline_start_position_bytes",
    "Where each timeline of the current one's history began: its parent's switch point, a WAL "
    "position (LSN) in bytes (the newest ten).",
    "timeline",
)
WAL_ARCHIVE_ABANDONED_FILES = gauge(
    "drwatch_wal_archive_abandoned_files",
    "WAL files recovery does not read: abandoned timelines, or an ancestor's past its switch.",
)
WAL_ARCHIVE_TIMELINES_WITHOUT_HISTORY = gauge(
    "drwatch_wal_archive_timelines_without_history",
    "Timelines above 1 with WAL in the store but no .history file: recovery cannot follow them.",
)
WAL_ARCHIVE_BASE_BACKUPS = gauge(
    "drwatch_wal_archive_base_backups",
    "Base backup labels (.backup files) in the archive store on the current timeline's path.",
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
    WAL_ARCHIVE_TIMELINE_START_POSITION_BYTES,
    WAL_ARCHIVE_ABANDONED_FILES,
    WAL_ARCHIVE_TIMELINES_WITHOUT_HISTORY,
    WAL_ARCHIVE_BASE_BACKUPS,
    WAL_ARCHIVE_LAST_ARCHIVED_PRESENT,
    WAL_SEGMENT_SIZE_BYTES_USED,
)
MAX_TIMELINES_EXPORTED = 10


class WalArchiveCheck(Check[None]):
    def __init__(
        self,
        config: BackupsConfig,
        store: Store,
        pg: PostgresConfig | None,
        base_configured: bool = True,
    ) -> None:
        super().__init__(None)
        self.config = config
        self.store = store
        self.pg = pg
        # Whether drwatch knows where base backups are (backups.base_store, a pitr drill's
        # source): WAL with no base backup to replay it onto recovers nothing.
        self.base_configured = base_configured

    def _ask_postgres(self) -> tuple[int | None, str | None, str | None]:
        """wal_segment_size, the archiver's newest file and, on a primary, the file it writes
        now (its timeline is the current one); on a standby neither is the primary's."""
        if self.pg is None:
            return None, None, None
        with check_session(self.pg) as conn:
            row = fetch_one(conn, SERVER_WAL_SQL, what="pg_stat_archiver")
        return int(row["size"]), row["last_archived_wal"], row["writing"]

    def waits_on(self) -> str | None:
        return self.store.url

    def run(self) -> Observation:
        # PostgreSQL first, then the store: a file archived in between is then in the listing.
        pg_size, last_archived, writing = self._ask_postgres()
        listed = list(self.store.list())
        layout = wal_layout(listed, self.config.wal_layout)
        objects = archive_files(listed, layout)
        segment_size = (
            self.config.wal_segment_size or pg_size or infer_segment_size(self.store, objects)
        )
        result = read_continuity(objects, segment_size, history_reader(self.store), writing)
        now = time.time()
        obs = Observation(Status.OK, "")
        obs.add(WAL_ARCHIVE_SEGMENTS, result.segments)
        obs.add(WAL_ARCHIVE_MISSING_SEGMENTS, result.missing)
        obs.add(WAL_ARCHIVE_BASE_BACKUPS, result.base_backups)
        obs.add(WAL_SEGMENT_SIZE_BYTES_USED, segment_size)
        obs.add(WAL_ARCHIVE_TIMELINE, result.path.current)
        obs.add(WAL_ARCHIVE_ABANDONED_FILES, result.abandoned)
        obs.add(WAL_ARCHIVE_TIMELINES_WITHOUT_HISTORY, len(result.without_history))
        for timeline, begin in result.path.begins()[-MAX_TIMELINES_EXPORTED:]:
            obs.add(WAL_ARCHIVE_TIMELINE_START_POSITION_BYTES, begin, timeline=str(timeline))
        obs.values.update(
            segments=result.segments,
            missing_segments=result.missing,
            wal_layout=layout,
            timeline=result.path.current,
            timeline_switches=", ".join(
                f"{s.timeline}->{format_lsn(s.end)}" for s in result.path.switches
            ),
        )
        how = f"{layout} layout" + (", detected" if self.config.wal_layout == "auto" else "")
        problems = [
            f"timeline {timeline} has WAL but no {timeline:08X}.history: recovery cannot follow "
            "the switch to it"
            for timeline in result.without_history
        ]
        if result.newest is None:
            obs.status = Status.CRITICAL
            obs.summary = "; ".join(
                [f"no WAL segment of timeline {result.path.current} in {self.store.url} ({how})",
                 *problems]
            )  # fmt: skip
            return obs
        newest = result.newest
        obs.add(WAL_ARCHIVE_NEWEST_SEGMENT_TIMESTAMP_SECONDS, newest.obj.modified)
        obs.values.update(
            newest_segment=newest.name, newest_segment_age_seconds=now - newest.obj.modified
        )
        problems += self._gaps(obs, result, now)
        if last_archived and writing:  # a standby's archiver is not the primary's
            present = any(archive_file_name(o.key) == last_archived for o in objects)
            obs.add(WAL_ARCHIVE_LAST_ARCHIVED_PRESENT, present)
            obs.values["last_archived_present"] = present
            if not present:
                problems.append(
                    f"the archiver reported {last_archived} archived, but it is not in the store"
                )
        if not self.base_configured and result.base_backups == 0:
            obs.exposures["pitr"] = float("inf")
            problems.append(
                "PITR impossible: WAL is archived but no base backup was taken with this archive "
                "(no .backup file) nor is one configured: take one (pg_basebackup -Ft, "
                "pgbackrest backup) and point backups.base_store at it"
            )
        obs.status = Status.CRITICAL if problems else Status.OK
        base = f"{count(result.segments, 'segment')} since {result.name(result.start_segno or 0)}"
        on = f"timeline {result.path.current}" + (
            f" (from {_switches(result)})" if result.path.switches else ""
        )
        obs.summary = "; ".join(
            [
                f"{base} ({how}), {on}, newest {newest.name} {age_of(newest.obj.modified)} old",
                *problems,
            ]
        )
        return obs

    @staticmethod
    def _gaps(obs: Observation, result: Continuity, now: float) -> list[str]:
        """Names the gaps (a few of them) and caps PITR at the last segment before the first."""
        if not result.gaps or result.newest is None:
            return []
        names = [
            result.name(first) + ("" if last == first else f"..{result.name(last)}")
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


def _switches(result: Continuity) -> str:
    return ", ".join(
        f"timeline {s.timeline} to {format_lsn(s.end)}" for s in result.path.switches[-3:]
    )


def infer_segment_size(store: Store, objects: list[StoredObject]) -> int:
    """Uncompressed segments are exactly wal_segment_size bytes: the most common such size.
    Compressed ones say it in their first page's header."""
    sizes = [
        o.size
        for o in objects
        if not compressed(o.key)
        and len(archive_file_name(o.key)) == 24
        and o.size >= 1024 * 1024
        and o.size & (o.size - 1) == 0
    ]
    if sizes:
        return statistics.mode(sizes)
    segments = [o for o in objects if len(archive_file_name(o.key)) == 24]
    if segments:
        newest = max(segments, key=lambda o: o.key)
        try:
            head = read_prefix(newest.key, store.chunks(newest.key), LONG_PAGE_HEADER_BYTES)
        except CompressionError as exc:
            raise CheckError("query", f"store {store.url}: {exc}") from None
        if size := segment_size_in_header(head):
            return size
    raise CheckError(
        "config",
        f"store {store.url}: cannot tell wal_segment_size (no postgres section, no "
        "backups.wal_segment_size, no segment whose size or page header says it)",
    )


def _plan(context: BuildContext) -> Planned | None:
    backups = context.target.backups
    if backups is None or not backups.wal_store:
        return None
    pitr = context.target.drills.pitr if context.target.drills else None
    base = bool(backups.base_store or (pitr and (pitr.base_store or pitr.pgbackrest)))
    check = WalArchiveCheck(
        backups, context.store(backups.wal_store), context.target.postgres, base
    )
    # Listing is cheap next to a dump's verification: a tighter deadline, same interval.
    return Planned(check, backups.interval, min(backups.timeout, backups.interval))


DEFINITION = CheckDef(
    name=NAME,
    section="backups",
    source="the WAL store",
    tells="segments missing between the newest base backup's start and the newest segment, "
    "along the current timeline's history (abandoned timelines prove nothing; a timeline "
    "without its `.history` is CRITICAL; `.partial`, `.backup`, compressed names understood; "
    "plain copies, pgBackRest, WAL-G and barman layouts), the newest "
    "segment's age, whether the archiver's `last_archived_wal` really is in the store; a gap caps "
    "PITR; WAL with no base backup configured nor taken with the archive makes PITR impossible",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
