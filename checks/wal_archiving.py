"""WAL archiving: pg_stat_archiver, the .ready backlog, unarchived WAL and the PITR exposure.

PITR exposure must stay 0 on an idle primary and grow on a hung or failing archiver, so it is
measured in bytes first (how much WAL the archive lacks), then in time (since when the daemon has
seen WAL the archive lacks), bounded above by the time since the last successful archive and below
by the age of the oldest `.ready` file (a completed segment still waiting is at least that old).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from checks.base import Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.archiver import ReadyFiles, UnarchivedClock, ready_files
from checks.support.pg import PostgresCheck, Row, fetch_one, timestamp
from checks.support.walnames import archived_end_lsn, parse_wal_name
from core.config.postgres import PostgresConfig, WalArchivingOptions
from core.config.schema import ObjectiveSpec
from core.durations import format_duration
from core.humanize import format_bytes
from core.metrics import counter, gauge

NAME = "wal_archiving"

PG_IN_RECOVERY = gauge("drwatch_pg_in_recovery", "1 if the server is a standby (in recovery).")
PG_ARCHIVE_MODE = gauge(
    "drwatch_pg_archive_mode",
    "The server's archive_mode setting (1 for the mode in force).",
    "mode",
)
PG_WAL_SEGMENT_SIZE_BYTES = gauge(
    "drwatch_pg_wal_segment_size_bytes", "The cluster's wal_segment_size in bytes."
)
PG_ARCHIVER_ARCHIVED_TOTAL = counter(
    "drwatch_pg_archiver_archived_total",
    "WAL files archived successfully (pg_stat_archiver.archived_count).",
)
PG_ARCHIVER_FAILED_TOTAL = counter(
    "drwatch_pg_archiver_failed_total",
    "Failed attempts to archive WAL files (pg_stat_archiver.failed_count).",
)
PG_ARCHIVER_LAST_ARCHIVED_TIMESTAMP_SECONDS = gauge(
    "drwatch_pg_archiver_last_archived_timestamp_seconds",
    "Time of the last successful archive (pg_stat_archiver.last_archived_time).",
)
PG_ARCHIVER_LAST_FAILED_TIMESTAMP_SECONDS = gauge(
    "drwatch_pg_archiver_last_failed_timestamp_seconds",
    "Time of the last failed archive attempt (pg_stat_archiver.last_failed_time).",
)
PG_ARCHIVER_STATS_RESET_TIMESTAMP_SECONDS = gauge(
    "drwatch_pg_archiver_stats_reset_timestamp_seconds",
    "When pg_stat_archiver was last reset (pg_stat_archiver.stats_reset).",
)
PG_ARCHIVER_FAILING = gauge(
    "drwatch_pg_archiver_failing",
    "1 if the last archive attempt failed (last failure newer than last success).",
)
PG_ARCHIVE_READY_FILES = gauge(
    "drwatch_pg_archive_ready_files",
    "Completed WAL segments waiting to be archived (.ready files in archive_status).",
)
PG_ARCHIVE_OLDEST_READY_AGE_SECONDS = gauge(
    "drwatch_pg_archive_oldest_ready_age_seconds",
    "Age of the oldest .ready file; 0 when there is none.",
)
PG_UNARCHIVED_WAL_BYTES = gauge(
    "drwatch_pg_unarchived_wal_bytes",
    "WAL written but not yet in the archive: current LSN minus the end of the last archived "
    "segment.",
)

METRICS = (
    PG_IN_RECOVERY,
    PG_ARCHIVE_MODE,
    PG_WAL_SEGMENT_SIZE_BYTES,
    PG_ARCHIVER_ARCHIVED_TOTAL,
    PG_ARCHIVER_FAILED_TOTAL,
    PG_ARCHIVER_LAST_ARCHIVED_TIMESTAMP_SECONDS,
    PG_ARCHIVER_LAST_FAILED_TIMESTAMP_SECONDS,
    PG_ARCHIVER_STATS_RESET_TIMESTAMP_SECONDS,
    PG_ARCHIVER_FAILING,
    PG_ARCHIVE_READY_FILES,
    PG_ARCHIVE_OLDEST_READY_AGE_SECONDS,
    PG_UNARCHIVED_WAL_BYTES,
)

_ARCHIVER_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('archive_mode') AS archive_mode,
       pg_size_bytes(current_setting('wal_segment_size')) AS wal_segment_size,
       a.archived_count, a.last_archived_wal, a.last_archived_time,
       a.failed_count, a.last_failed_wal, a.last_failed_time, a.stats_reset,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint END AS current_lsn,
       now() AS server_now
FROM pg_stat_archiver a
"""


@dataclass
class ArchiverMemory:
    """What the check remembers between runs; a reload hands it to the next check."""

    # (time, lsn) samples taken while WAL was unarchived: they date the exposure.
    unarchived: deque[tuple[float, int]] = field(default_factory=deque)
    # Where the archive was complete before a .history file became the last archived name.
    last_archived_end: int | None = None
    # When the current failing episode began, as first seen; whether drwatch saw it begin.
    failing_since: datetime | None = None
    saw_it_begin: bool = False
    observed: bool = False  # a run has seen the archiver (so a later failure begins in view)


class WalArchivingCheck(PostgresCheck[ArchiverMemory]):
    def __init__(
        self, pg: PostgresConfig, options: WalArchivingOptions, pitr: ObjectiveSpec
    ) -> None:
        super().__init__(pg, options, ArchiverMemory())
        self.options = options
        self.rpo = pitr.rpo

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        row = fetch_one(conn, _ARCHIVER_SQL, what="pg_stat_archiver")
        ready, ready_error = ready_files(conn)
        now = row["server_now"].timestamp()
        obs = self._archiver(row, ready, now)
        if row["in_recovery"]:
            # A standby's archiver does nothing unless archive_mode=always; PITR is the primary's.
            obs.summary = "standby: WAL archiving and PITR exposure are judged on the primary"
            return obs
        if row["archive_mode"] == "off":
            obs.status = Status.CRITICAL
            obs.summary = (
                "archive_mode is off: no WAL is archived, point-in-time recovery is impossible"
            )
            obs.exposures["pitr"] = math.inf
            return obs
        self._judge(obs, row, ready, now)
        if not obs.values["archiving_failing"]:
            self.state.failing_since = None  # the episode, if any, is over
        self.state.observed = True
        if ready_error:
            obs.status = max(obs.status, Status.WARNING)
            obs.summary = "; ".join([obs.summary, ready_error])
        return obs

    def _archiver(self, row: Row, ready: ReadyFiles | None, now: float) -> Observation:
        """pg_stat_archiver and the .ready backlog, as samples and values."""
        obs = Observation(Status.OK, "")
        obs.add(PG_IN_RECOVERY, row["in_recovery"])
        obs.add(PG_ARCHIVE_MODE, 1, mode=row["archive_mode"])
        obs.add(PG_WAL_SEGMENT_SIZE_BYTES, row["wal_segment_size"])
        obs.add(PG_ARCHIVER_ARCHIVED_TOTAL, row["archived_count"])
        obs.add(PG_ARCHIVER_FAILED_TOTAL, row["failed_count"])
        obs.add(PG_ARCHIVER_LAST_ARCHIVED_TIMESTAMP_SECONDS, timestamp(row["last_archived_time"]))
        obs.add(PG_ARCHIVER_LAST_FAILED_TIMESTAMP_SECONDS, timestamp(row["last_failed_time"]))
        obs.add(PG_ARCHIVER_STATS_RESET_TIMESTAMP_SECONDS, timestamp(row["stats_reset"]))
        failing = _failing(row["last_archived_time"], row["last_failed_time"])
        obs.add(PG_ARCHIVER_FAILING, failing)
        oldest_ready_age = None
        if ready is not None:
            oldest_ready_age = now - ready.oldest.timestamp() if ready.oldest else 0.0
            obs.add(PG_ARCHIVE_READY_FILES, ready.count)
            obs.add(PG_ARCHIVE_OLDEST_READY_AGE_SECONDS, oldest_ready_age)
        obs.values.update(
            role="standby" if row["in_recovery"] else "primary",
            archive_mode=row["archive_mode"],
            archiving_failing=failing,
            last_archived_wal=row["last_archived_wal"],
            last_failed_wal=row["last_failed_wal"],
            archived_count=row["archived_count"],
            failed_count=row["failed_count"],
            ready_files=ready.count if ready else None,
            oldest_ready_age_seconds=oldest_ready_age,
        )
        return obs

    def _judge(self, obs: Observation, row: Row, ready: ReadyFiles | None, now: float) -> None:
        """Unarchived WAL, the PITR exposure it leaves, and the verdict, on a primary."""
        segment_size = int(row["wal_segment_size"])
        current_lsn = int(row["current_lsn"])
        archived_end, basis = self._archived_end(row, ready, current_lsn, segment_size)
        if archived_end is None:
            obs.status = Status.WARNING
            obs.summary = f"cannot tell how much WAL is archived ({basis}); PITR exposure unknown"
            obs.exposures["pitr"] = None
            return
        unarchived = max(0, current_lsn - archived_end)
        obs.add(PG_UNARCHIVED_WAL_BYTES, unarchived)
        exposure = self._exposure(now, current_lsn, archived_end, row["last_archived_time"])
        if ready and ready.count and ready.oldest:
            exposure = max(exposure, now - ready.oldest.timestamp())
        obs.exposures["pitr"] = exposure
        obs.values.update(unarchived_wal_bytes=unarchived, pitr_exposure_seconds=exposure)
        failing = bool(obs.values["archiving_failing"])
        obs.status, obs.summary = self._verdict(exposure, unarchived, failing, row, now, basis)

    def _archived_end(
        self, row: Row, ready: ReadyFiles | None, current_lsn: int, segment_size: int
    ) -> tuple[int | None, str]:
        if row["last_archived_wal"]:
            end = archived_end_lsn(row["last_archived_wal"], segment_size)
            if end is not None:
                self.state.last_archived_end = end
                return end, "last archived WAL"
            if self.state.last_archived_end is not None:  # a .history file: positions as before
                return (
                    self.state.last_archived_end,
                    "last archived segment before a timeline switch",
                )
        # No archive recorded since stats_reset (or ever): archive_status still tells. Every
        # completed segment has a .ready (waiting) or .done (archived) file, so the archive is
        # complete up to the oldest waiting segment, or up to the current one if none waits.
        if ready is not None and ready.oldest_segment:
            oldest = parse_wal_name(ready.oldest_segment.removesuffix(".ready"), segment_size)
            if oldest is not None and oldest.segno is not None:
                return oldest.segno * segment_size, "oldest .ready segment"
        if ready is not None and ready.count == 0:
            return current_lsn - current_lsn % segment_size, "archive_status has no .ready file"
        reset = row["stats_reset"]
        since = f" since stats reset at {reset:%Y-%m-%d %H:%M:%S}" if reset else ""
        return None, f"no archived WAL recorded{since}"

    def _exposure(
        self, now: float, current_lsn: int, archived_end: int, last_archived: datetime | None
    ) -> float:
        clock = UnarchivedClock(self.options.idle_tolerance_bytes, self.state.unarchived)
        first_seen = clock.observe(now, current_lsn, archived_end)
        if first_seen is None:
            return 0.0
        exposure = now - first_seen
        if last_archived is not None:
            exposure = min(exposure, now - last_archived.timestamp())
        return max(0.0, exposure)

    def _failing_since(self, row: Row) -> str:
        """When the failing began: pg_stat_archiver only keeps the latest failure, so the first
        one drwatch saw in this episode; if drwatch started during it, it says so."""
        memory = self.state
        if memory.failing_since is None:
            memory.failing_since = row["last_failed_time"]
            memory.saw_it_begin = memory.observed
        since = f"{memory.failing_since:%H:%M:%S}"
        if memory.saw_it_begin:
            return f"archiving failing since {since} ({row['last_failed_wal']})"
        success = row["last_archived_time"]
        last = f"last success {success:%H:%M:%S}" if success else "no success recorded"
        return (
            f"archiving failing since before {since} ({row['last_failed_wal']}; drwatch started "
            f"during the failure, {last})"
        )

    def _verdict(
        self, exposure: float, unarchived: int, failing: bool, row: Row, now: float, basis: str
    ) -> tuple[Status, str]:
        objective = f" (objective {format_duration(self.rpo)})" if self.rpo is not None else ""
        parts = [
            f"PITR exposure {format_duration(exposure)}{objective}",
            f"unarchived {format_bytes(unarchived)}",
        ]
        if failing:
            parts.append(self._failing_since(row))
        elif row["last_archived_time"] is not None:
            age = format_duration(now - row["last_archived_time"].timestamp())
            parts.append(f"last archived {row['last_archived_wal']} {age} ago")
        else:
            parts.append(basis)
        status = Status.OK
        if failing:
            status = Status.WARNING
        if self.rpo is not None and exposure > self.rpo:
            status = Status.CRITICAL
        return status, ", ".join(parts)


def _failing(last_archived: datetime | None, last_failed: datetime | None) -> bool:
    if last_failed is None:
        return False
    return last_archived is None or last_failed > last_archived


def _plan(context: BuildContext) -> Planned | None:
    pg = context.target.postgres
    if pg is None or not pg.wal_archiving.enabled:
        return None
    check = WalArchivingCheck(pg, pg.wal_archiving, context.objective("pitr"))
    return scheduled(check, pg.wal_archiving, pg.interval, pg.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="postgres",
    source="`pg_stat_archiver`, `pg_ls_archive_statusdir()`, `pg_current_wal_lsn()`",
    tells="every archiver column, whether archiving is failing now, the `.ready` backlog and its "
    "age, unarchived WAL in bytes, the **PITR exposure** in seconds, the server's role",
    metrics=METRICS,
    scenarios=("pitr",),
    plan=_plan,
)
