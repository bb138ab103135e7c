"""The archiver's backlog (`.ready` files in archive_status) and the clock that dates unarchived
WAL, for the wal_archiving check."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from checks.support.pg import Row, query_error

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


def ready_files(conn: psycopg.Connection[Row]) -> tuple[ReadyFiles | None, str]:
    """The `.ready` backlog, or None and why when drwatch's role may not list it."""
    try:
        with conn.cursor() as cur:
            cur.execute(_READY_SQL)
            row: Any = cur.fetchone()
    except psycopg.Error as exc:
        conn.rollback()
        err = query_error(exc, "pg_ls_archive_statusdir()")
        if err.reason != "permission":
            raise err from None
        return None, "cannot list archive_status (grant pg_monitor to drwatch's role)"
    return ReadyFiles(int(row["ready"]), row["oldest"], row["oldest_segment"]), ""


class UnarchivedClock:
    """Remembers when the daemon first saw WAL positions that the archive still lacks.

    Holds (time, lsn) samples taken while WAL was unarchived, oldest first; samples whose WAL
    has since been archived are dropped, so the first sample dates the oldest data at risk.
    """

    def __init__(
        self, tolerance_bytes: int, samples: deque[tuple[float, int]] | None = None
    ) -> None:
        self.tolerance = tolerance_bytes
        self.samples: deque[tuple[float, int]] = deque() if samples is None else samples

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
