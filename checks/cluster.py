"""What the cluster itself says about its recoverability: the size of pg_wal, data page checksum
failures, and the timeline.

- pg_wal grows when archiving or a slot holds WAL back; on its own volume, a full pg_wal stops
  the server.
- `pg_stat_database.checksum_failures` counts pages that failed their checksum when read: the
  storage corrupts data, and every backup from now on copies the damage (it is NULL without
  data checksums, so the metric is absent then; `data_checksums` says which).
- The timeline changes with every promotion: backups and the WAL archive must follow it.
"""

from __future__ import annotations

import time

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.pg import check_session, fetch_all, fetch_one
from core.config.base import CheckOptions
from core.config.postgres import PostgresConfig
from core.humanize import count, format_bytes
from core.metrics import counter, gauge

NAME = "cluster"
SHARED = "_shared"
RECENT = 86400.0  # pg_stat_database's row for shared objects has no database name

PG_WAL_DIRECTORY_BYTES = gauge(
    "drwatch_pg_wal_directory_bytes", "Size of the files in pg_wal (pg_ls_waldir)."
)
PG_WAL_DIRECTORY_FILES = gauge("drwatch_pg_wal_directory_files", "Files in pg_wal.")
PG_DATA_CHECKSUMS_ENABLED = gauge(
    "drwatch_pg_data_checksums_enabled", "1 if the cluster has data page checksums."
)
PG_CHECKSUM_FAILURES_TOTAL = counter(
    "drwatch_pg_checksum_failures_total",
    "Data pages that failed their checksum when read, per database (_shared: shared objects).",
    "database",
)
PG_CHECKSUM_LAST_FAILURE_TIMESTAMP_SECONDS = gauge(
    "drwatch_pg_checksum_last_failure_timestamp_seconds",
    "When the database last read a page that failed its checksum.",
    "database",
)
PG_TIMELINE = gauge("drwatch_pg_timeline", "The cluster's timeline (a promotion starts a new one).")

METRICS = (
    PG_WAL_DIRECTORY_BYTES,
    PG_WAL_DIRECTORY_FILES,
    PG_DATA_CHECKSUMS_ENABLED,
    PG_CHECKSUM_FAILURES_TOTAL,
    PG_CHECKSUM_LAST_FAILURE_TIMESTAMP_SECONDS,
    PG_TIMELINE,
)

_CLUSTER_SQL = """
SELECT (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()) AS wal_bytes,
       (SELECT count(*) FROM pg_ls_waldir()) AS wal_files,
       current_setting('data_checksums') = 'on' AS checksums,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline
"""
_CHECKSUMS_SQL = """
SELECT coalesce(datname, %s) AS database, checksum_failures AS failures,
       extract(epoch FROM checksum_last_failure) AS last_failure
FROM pg_stat_database WHERE checksum_failures IS NOT NULL ORDER BY 1
"""


class ClusterCheck(Check[None]):
    def __init__(self, pg: PostgresConfig) -> None:
        super().__init__(None)
        self.pg = pg

    def run(self) -> Observation:
        with check_session(self.pg) as conn:
            row = fetch_one(conn, _CLUSTER_SQL, what="pg_ls_waldir, pg_control_checkpoint")
            checksums = fetch_all(conn, _CHECKSUMS_SQL, (SHARED,), what="pg_stat_database")
        obs = Observation(Status.OK, "")
        obs.add(PG_WAL_DIRECTORY_BYTES, float(row["wal_bytes"]))
        obs.add(PG_WAL_DIRECTORY_FILES, row["wal_files"])
        obs.add(PG_DATA_CHECKSUMS_ENABLED, bool(row["checksums"]))
        obs.add(PG_TIMELINE, row["timeline"])
        failed, recent = [], False
        for db in checksums:
            obs.add(PG_CHECKSUM_FAILURES_TOTAL, db["failures"], database=db["database"])
            if db["last_failure"] is not None:
                obs.add(
                    PG_CHECKSUM_LAST_FAILURE_TIMESTAMP_SECONDS,
                    float(db["last_failure"]),
                    database=db["database"],
                )
            if db["failures"]:
                failed.append(f"{db['database']} {count(db['failures'], 'page')}")
                last = db["last_failure"]
                recent = recent or (last is not None and time.time() - float(last) < RECENT)
        obs.values.update(
            wal_bytes=float(row["wal_bytes"]),
            timeline=row["timeline"],
            data_checksums=bool(row["checksums"]),
        )
        parts = [
            f"timeline {row['timeline']}, pg_wal {format_bytes(float(row['wal_bytes']))} in "
            f"{count(row['wal_files'], 'file')}, data checksums "
            + ("on" if row["checksums"] else "off")
        ]
        if failed:
            # The counter never falls: an old failure stays a warning, a new one is critical.
            obs.status = Status.CRITICAL if recent else Status.WARNING
            parts.append("checksum failures: " + ", ".join(failed))
        obs.summary = "; ".join(parts)
        return obs


def _plan(context: BuildContext) -> Planned | None:
    pg = context.target.postgres
    options: CheckOptions | None = pg.cluster if pg else None
    if pg is None or options is None or not options.enabled:
        return None
    return scheduled(ClusterCheck(pg), options, pg.interval, pg.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="postgres",
    source="`pg_ls_waldir()`, `pg_stat_database`, `pg_control_checkpoint()`",
    tells="the size of pg_wal, data page checksum failures per database (CRITICAL within a day "
    "of one: the storage corrupts pages and backups copy them), whether data checksums are "
    "on, and the timeline (a promotion starts a new one)",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
