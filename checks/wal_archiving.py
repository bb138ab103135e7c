"""WAL archiving: pg_stat_archiver, the .ready backlog, unarchived WAL and the PITR exposure.

PITR exposure must stay 0 on an idle primary and grow on a hung or failing archiver, so it is
measured in bytes first (how much WAL the archive lacks), then in time (since when the daemon has
seen WAL the archive lacks), bounded above by the time since the last successful archive and below
by the age of the oldest `.ready` file (a completed segment still waiting is at least that old).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from checks.base import MetricSpec, Observation, Status
from checks.support.pg import Row, fetch_one, query_error, timestamp
from checks.support.walnames import archived_end_lsn, parse_wal_name
from core.config.postgres import WalArchivingOptions
from core.config.schema import ObjectiveSpec
from core.durations import format_duration

NAME = "wal_archiving"

METRICS = (
    MetricSpec("drwatch_pg_in_recovery", "gauge", "1 if the server is a standby (in recovery)."),
    MetricSpec(
        "drwatch_pg_archive_mode",
        "gauge",
        "The server's archive_mode setting (1 for the mode in force).",
        ("mode",),
    ),
    MetricSpec(
        "drwatch_pg_wal_segment_size_bytes", "gauge", "The cluster's wal_segment_size in bytes."
    ),
    MetricSpec(
        "drwatch_pg_archiver_archived_total",
        "counter",
        "WAL files archived successfully (pg_stat_archiver.archived_count).",
    ),
    MetricSpec(
        "drwatch_pg_archiver_failed_total",
        "counter",
        "Failed attempts to archive WAL files (pg_stat_archiver.failed_count).",
    ),
    MetricSpec(
        "drwatch_pg_archiver_last_archived_timestamp_seconds",
        "gauge",
        "Time of the last successful archive (pg_stat_archiver.last_archived_time).",
    ),
    MetricSpec(
        "drwatch_pg_archiver_last_failed_timestamp_seconds",
        "gauge",
        "Time of the last failed archive attempt (pg_stat_archiver.last_failed_time).",
    ),
    MetricSpec(
        "drwatch_pg_archiver_stats_reset_timestamp_seconds",
        "gauge",
        "When pg_stat_archiver was last reset (pg_stat_archiver.stats_reset).",
    ),
    MetricSpec(
        "drwatch_pg_archiver_failing",
        "gauge",
        "1 if the last archive attempt failed (last failure newer than last success).",
    ),
    MetricSpec(
        "drwatch_pg_archive_ready_files",
        "gauge",
        "Completed WAL segments waiting to be archived (.ready files in archive_status).",
    ),
    MetricSpec(
        "drwatch_pg_archive_oldest_ready_age_seconds",
        "gauge",
        "Age of the oldest .ready file; 0 when there is none.",
    ),
    MetricSpec(
        "drwatch_pg_unarchived_wal_bytes",
        "gauge",
        "WAL written but not yet in the archive: current LSN minus the end of the last archived "
        "segment.",
    ),
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

_READY_SQL = """
SELECT count(*) AS ready, min(modification) AS oldest,
       min(name) FILTER (WHERE name ~ '^[0-9A-F]{24}(\\.partial)?\\.ready$') AS oldest_segment
FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'
"""

# Samples kept while WAL stays unarchived; far more than any RPO needs at any sane interval.
_MAX_HISTORY = 10_000


@dataclass(frozen=True)
class ReadyFiles:
    count: int
    oldest: datetime | None
    oldest_segment: str | None


class UnarchivedClock:
    """Remembers when the daemon first saw WAL positions that the archive still lacks.

    Holds (time, lsn) samples taken while WAL was unarchived, oldest first; samples whose WAL
    has since been archived are dropped, so the first sample dates the oldest data at risk.
    """

    def __init__(self, tolerance_bytes: int) -> None:
        self.tolerance = tolerance_bytes
        self.samples: deque[tuple[float, int]] = deque()

    def observe(self, now: float, current_lsn: int, archived_end: int) -> float | None:
        """Time since which unarchived WAL has been seen, or None if the archive is complete."""
        if current_lsn - archived_end > self.tolerance and (
            not self.samples or current_lsn != self.samples[-1][1]
        ):
            self.samples.append((now, current_lsn))
            if len(self.samples) > _MAX_HISTORY:
                del self.samples[1]  # keep the oldest: it dates the exposure
        while self.samples and self.samples[0][1] - archived_end <= self.tolerance:
            self.samples.popleft()
        return self.samples[0][0] if self.samples else None


class WalArchivingCheck:
    name: str = NAME
    metrics: tuple[MetricSpec, ...] = METRICS

    def __init__(self, options: WalArchivingOptions, pitr: ObjectiveSpec) -> None:
        self.options = options
        self.rpo = pitr.rpo
        self.clock = UnarchivedClock(options.idle_tolerance_bytes)
        self.last_archived_end: int | None = None

    def adopt_history(self, previous: WalArchivingCheck) -> None:
        """Keeps what the daemon saw before a config reload: the exposure clock must not restart."""
        self.clock.samples = previous.clock.samples
        self.last_archived_end = previous.last_archived_end

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        row = fetch_one(conn, _ARCHIVER_SQL, what="pg_stat_archiver")
        ready, ready_error = self._ready_files(conn)
        oldest_ready = ready.oldest if ready else None
        now = row["server_now"].timestamp()
        obs = Observation(Status.OK, "")
        obs.add("drwatch_pg_in_recovery", row["in_recovery"])
        obs.add("drwatch_pg_archive_mode", 1, mode=row["archive_mode"])
        obs.add("drwatch_pg_wal_segment_size_bytes", row["wal_segment_size"])
        obs.add("drwatch_pg_archiver_archived_total", row["archived_count"])
        obs.add("drwatch_pg_archiver_failed_total", row["failed_count"])
        obs.add(
            "drwatch_pg_archiver_last_archived_timestamp_seconds",
            timestamp(row["last_archived_time"]),
        )
        obs.add(
            "drwatch_pg_archiver_last_failed_timestamp_seconds", timestamp(row["last_failed_time"])
        )
        obs.add("drwatch_pg_archiver_stats_reset_timestamp_seconds", timestamp(row["stats_reset"]))
        failing = _failing(row["last_archived_time"], row["last_failed_time"])
        obs.add("drwatch_pg_archiver_failing", failing)
        oldest_ready_age = now - oldest_ready.timestamp() if oldest_ready else 0.0
        if ready is not None:
            obs.add("drwatch_pg_archive_ready_files", ready.count)
            obs.add("drwatch_pg_archive_oldest_ready_age_seconds", oldest_ready_age)
        obs.values.update(
            role="standby" if row["in_recovery"] else "primary",
            archive_mode=row["archive_mode"],
            archiving_failing=failing,
            last_archived_wal=row["last_archived_wal"],
            last_failed_wal=row["last_failed_wal"],
            archived_count=row["archived_count"],
            failed_count=row["failed_count"],
            ready_files=ready.count if ready else None,
            oldest_ready_age_seconds=oldest_ready_age if ready is not None else None,
        )
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

        segment_size = int(row["wal_segment_size"])
        current_lsn = int(row["current_lsn"])
        archived_end, basis = self._archived_end(row, ready, current_lsn, segment_size)
        problems: list[str] = []
        if ready_error:
            problems.append(ready_error)
        if archived_end is None:
            obs.status = Status.WARNING
            obs.summary = "; ".join(
                [
                    f"cannot tell how much WAL is archived ({basis}); PITR exposure unknown",
                    *problems,
                ]
            )
            obs.exposures["pitr"] = None
            return obs
        unarchived = max(0, current_lsn - archived_end)
        obs.add("drwatch_pg_unarchived_wal_bytes", unarchived)
        exposure = self._exposure(now, current_lsn, archived_end, row["last_archived_time"])
        if ready and ready.count:
            exposure = max(exposure, oldest_ready_age)
        obs.exposures["pitr"] = exposure
        obs.values.update(unarchived_wal_bytes=unarchived, pitr_exposure_seconds=exposure)
        obs.status, obs.summary = self._verdict(exposure, unarchived, failing, row, now, basis)
        if problems:
            obs.status = max(obs.status, Status.WARNING)
            obs.summary = "; ".join([obs.summary, *problems])
        return obs

    def _ready_files(self, conn: psycopg.Connection[Row]) -> tuple[ReadyFiles | None, str]:
        try:
            with conn.cursor() as cur:
                cur.execute(_READY_SQL)
                ready_row: Any = cur.fetchone()
        except psycopg.Error as exc:
            conn.rollback()
            err = query_error(exc, "pg_ls_archive_statusdir()")
            if err.reason != "permission":
                raise err from None
            return None, "cannot list archive_status (grant pg_monitor to drwatch's role)"
        files = ReadyFiles(
            int(ready_row["ready"]), ready_row["oldest"], ready_row["oldest_segment"]
        )
        return files, ""

    def _archived_end(
        self, row: Row, ready: ReadyFiles | None, current_lsn: int, segment_size: int
    ) -> tuple[int | None, str]:
        if row["last_archived_wal"]:
            end = archived_end_lsn(row["last_archived_wal"], segment_size)
            if end is not None:
                self.last_archived_end = end
                return end, "last archived WAL"
            if self.last_archived_end is not None:  # a .history file: positions as before
                return self.last_archived_end, "last archived segment before a timeline switch"
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
        first_seen = self.clock.observe(now, current_lsn, archived_end)
        if first_seen is None:
            return 0.0
        exposure = now - first_seen
        if last_archived is not None:
            exposure = min(exposure, now - last_archived.timestamp())
        return max(0.0, exposure)

    def _verdict(
        self, exposure: float, unarchived: int, failing: bool, row: Row, now: float, basis: str
    ) -> tuple[Status, str]:
        objective = f" (objective {format_duration(self.rpo)})" if self.rpo is not None else ""
        parts = [
            f"PITR exposure {format_duration(exposure)}{objective}",
            f"unarchived {unarchived} B",
        ]
        if failing:
            since = f"{row['last_failed_time']:%H:%M:%S}"
            parts.append(f"archiving failing since {since} ({row['last_failed_wal']})")
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
