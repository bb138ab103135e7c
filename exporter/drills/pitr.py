"""The `pitr` drill: the newest physical base backup restored into a scratch data directory, the
target's WAL archive replayed on it (to its end, or to `target_time`), promoted, then checked.

`recovered_to`, the last replayed transaction's time, is what the archive really lets you
recover; recovery that stops before the newest archived segment is a gap, and a failure.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from checks.support.continuity import history_reader, read_continuity
from checks.support.pg import fetch_one, session
from checks.support.stores import Store
from checks.support.walnames import parse_wal_name, segments_per_xlogid
from core.config.postgres import PostgresConfig
from core.config.schema import Config, Target
from core.config.stores import BackupsConfig
from core.errors import CheckError
from core.humanize import count
from exporter.drills.base_restore import NO_BASE_BACKUP, restore
from exporter.drills.copy_checks import check_copy, heartbeat_at_start, past_the_target
from exporter.drills.physical import PhysicalCopy
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DRILL_FAILURES, DrillError, new_scratch_dir
from exporter.drills.wal_fetch import archive, wal_store_of

__all__ = ["NO_BASE_BACKUP", "SCENARIO", "run"]

SCENARIO = "pitr"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.pitr is not None and backups and backups.wal_store
    timer = Timer(DrillResult(target.name, SCENARIO, time.time(), point="newest"), deadline)
    heartbeat_at_start(target, timer)
    try:
        workdir = new_scratch_dir(drills.scratch, config.state_dir, "base-")
    except DrillError as exc:  # no room of its own to restore in: a failed drill, said
        return timer.fail(exc, drills.timeout)
    try:
        copy = PhysicalCopy(drills, Path(config.state_dir), deadline)
        timer.result.values["isolation"] = copy.isolation.mode
        try:
            restored = restore(copy, config, target, workdir, timer)
            with timer.phase("restore"):
                dsn = copy.dsn("postgres", _role(target.postgres))
                end = _wait_promoted(copy, dsn, timer)
            with timer.phase("verify"):
                # Stopping at a target leaves later WAL unreplayed on purpose; a gap before
                # it ends recovery with an error instead (PostgreSQL refuses to promote).
                problems = []
                if not drills.pitr.target_time and timer.result.point == "newest":
                    problems = _continuity(wal_store_of(config, target), backups, end)
                if problems and timer.result.values.get("wal_from") == "restore_command":
                    # drwatch's own reader finds the WAL: the team's command is what failed.
                    problems = [
                        f"the restore_command stopped recovery early, though drwatch's own "
                        f"reader finds the WAL in the archive ({problems[0]}); it said: "
                        f"{copy.tool_errors() or 'nothing'}"
                    ]
                on_copy = copy.dsn(_database(target.postgres), end.superuser)
                # Stopped at once ('immediate'): the copy holds what the backup held.
                reached = end.recovered_to or timer.result.values.get("backup_time")
                newest = timer.result.point == "newest" and drills.pitr.target_time is None
                rpo = config.objective(target, "pitr").rpo if newest else None
                problems += check_copy(target, on_copy, timer, reached, True, rpo)
                if drills.pitr.target_time is not None:
                    problems += past_the_target(target, on_copy, drills.pitr.target_time, timer)
        except DRILL_FAILURES as exc:  # asked while the scratch server's log is still there
            needed = sum(f.stat().st_size for f in workdir.iterdir() if f.is_file())
            raise copy.explain(exc, int(needed * drills.scratch.disk_factor)) from None
        finally:
            copy.close()
        timer.result.recovered_to = end.recovered_to or timer.result.values.get("backup_time")
        timer.result.values["replayed_to_segment"] = end.segment
        summary = f"recovered {restored}: {end.said()}"
        if problems:
            return _unproven(timer.finish(False, "; ".join([summary, *problems])))
        return timer.finish(True, summary)
    except DRILL_FAILURES as exc:
        return _unproven(timer.fail(exc, drills.timeout))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _unproven(result: DrillResult) -> DrillResult:
    """A failed drill of the window's start says the window drwatch reports is not all there."""
    label = result.values.get("window_start")
    if label is not None and not result.ok:
        result.summary = (
            f"the recovery window's start ({label}, as base_backups reads it) does not "
            f"recover: {result.summary}"
        )
    return result


def _role(pg: PostgresConfig | None) -> str:
    """A role the physical copy has: production's own (its roles came with the backup)."""
    return str(conninfo_to_dict(pg.dsn).get("user") or "postgres") if pg else "postgres"


def _database(pg: PostgresConfig | None) -> str:
    return str(conninfo_to_dict(pg.dsn).get("dbname") or "postgres") if pg else "postgres"


_RECOVERY_SQL = """
SELECT pg_is_in_recovery() AS recovering, pg_last_xact_replay_timestamp() AS at,
       pg_walfile_name(pg_last_wal_replay_lsn()) AS segment,
       pg_last_wal_replay_lsn()::text AS replayed_lsn,
       pg_size_bytes(current_setting('wal_segment_size')) AS segment_size,
       (SELECT rolname FROM pg_roles WHERE oid = 10) AS superuser
"""


@dataclass(frozen=True)
class RecoveryEnd:
    recovered_to: float | None  # the last replayed transaction's time
    recovered_at: str
    segment: str | None  # the WAL file replay ended in
    segment_size: int
    superuser: str  # the copy's bootstrap superuser (trust on its socket): amcheck needs one
    replayed_lsn: str | None = None  # where WAL replay ended

    def said(self) -> str:
        """Whether WAL was replayed, and to where."""
        if self.recovered_to is None:
            return f"WAL replayed to {self.replayed_lsn}, no transaction after the backup's"
        return f"WAL replayed to {self.replayed_lsn}, the last transaction {self.recovered_at}"


def _wait_promoted(copy: PhysicalCopy, dsn: str, timer: Timer) -> RecoveryEnd:
    """Polls until recovery has ended and the server is promoted; where replay ended."""
    probe = PostgresConfig.model_validate({"dsn": dsn})
    while True:
        timer.remaining()
        try:
            with session(probe) as conn:
                row = fetch_one(conn, _RECOVERY_SQL, what="recovery")
        except CheckError:
            if why := copy.exited():
                raise DrillError(f"recovery failed: {why}") from None
            row = {"recovering": True}
        if not row["recovering"]:
            at = row["at"]
            return RecoveryEnd(
                at.timestamp() if at else None,
                f"{at:%Y-%m-%d %H:%M:%S %Z}" if at else "its start",
                row["segment"],
                int(row["segment_size"]),
                str(row["superuser"]),
                row["replayed_lsn"],
            )
        time.sleep(0.2)  # recovery runs in the server; this only looks, bounded by the deadline


def _continuity(store: Store, backups: BackupsConfig, end: RecoveryEnd) -> list[str]:
    """Recovery that ended before the newest segment of the archive's current timeline (as the
    wal_archive check reads it) stopped at a gap."""
    replayed = parse_wal_name(end.segment, end.segment_size) if end.segment else None
    objects = archive(store, backups)
    newest = read_continuity(objects, end.segment_size, history_reader(store)).newest
    if replayed is None or replayed.segno is None or newest is None or newest.wal.segno is None:
        return []
    missing = newest.wal.segno - replayed.segno
    if missing > 0:
        # The copy promoted onto a timeline of its own: its name for the segment is a file the
        # archive never held. Named as the archive holds it.
        per_log = segments_per_xlogid(end.segment_size)
        stopped = f"{newest.wal.timeline:08X}{replayed.segno // per_log:08X}"
        stopped += f"{replayed.segno % per_log:08X}"
        return [
            f"recovery stopped at {stopped} but the archive holds WAL up to {newest.name}: "
            f"a gap; {count(missing, 'segment')} of WAL after it cannot be replayed"
        ]
    return []
