"""The `pitr` drill: the newest physical base backup restored into a scratch data directory, the
target's WAL archive replayed on it (to its end, or to `target_time`), promoted, then checked.

`recovered_to`, the last replayed transaction's time, is what the archive really lets you
recover; recovery that stops before the newest archived segment is a gap, and a failure.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from checks.support.compression import CompressionError, inflated
from checks.support.continuity import history_reader, read_continuity
from checks.support.pg import fetch_one, session
from checks.support.stores import Store, StoredObject, open_store
from checks.support.tarballs import tar_name
from checks.support.wal_layouts import archive_file_name, archive_files, detect
from checks.support.walnames import parse_wal_name
from core.config.postgres import PostgresConfig
from core.config.schema import Config, Target
from core.config.stores import BackupsConfig
from core.errors import CheckError
from core.humanize import count
from exporter.drills.copy_checks import check_copy
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import (
    DRILL_FAILURES,
    DrillError,
    PhysicalCopy,
    new_scratch_dir,
    require_space,
)

SCENARIO = "pitr"
NO_BASE_BACKUP = (
    "PITR needs a physical base backup (pg_basebackup -Ft into drills.pitr.base_store, or "
    "drills.pitr.pgbackrest): WAL cannot be replayed on a logical restore of a dump"
)


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.pitr is not None and backups and backups.wal_store
    timer = Timer(DrillResult(target.name, SCENARIO, time.time()), deadline)
    workdir = new_scratch_dir(drills.scratch, config.state_dir, "base-")
    try:
        copy = PhysicalCopy(drills.scratch, Path(config.state_dir), deadline)
        try:
            if drills.pitr.pgbackrest:
                restored = _restore_with_pgbackrest(copy, target, timer)
            else:
                restored = _restore_tar_backup(copy, config, target, workdir, timer)
            with timer.phase("restore"):
                dsn = copy.dsn("postgres", _role(target.postgres))
                end = _wait_promoted(copy, dsn, timer)
            with timer.phase("verify"):
                # Stopping at target_time leaves later WAL unreplayed on purpose; a gap before
                # it ends recovery with an error instead (PostgreSQL refuses to promote).
                problems = [] if drills.pitr.target_time else _continuity(config, backups, end)
                on_copy = copy.dsn(_database(target.postgres), end.superuser)
                problems += check_copy(target, on_copy, timer, end.recovered_to)
        except DRILL_FAILURES as exc:  # asked while the scratch server's log is still there
            needed = sum(f.stat().st_size for f in workdir.iterdir() if f.is_file())
            raise copy.explain(exc, int(needed * drills.scratch.disk_factor)) from None
        finally:
            copy.close()
        timer.result.recovered_to = end.recovered_to
        timer.result.values["replayed_to_segment"] = end.segment
        summary = f"recovered {restored} to {end.recovered_at}"
        if problems:
            return timer.finish(False, "; ".join([summary, *problems]))
        return timer.finish(True, summary)
    except DRILL_FAILURES as exc:
        return timer.fail(exc, drills.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _restore_tar_backup(
    copy: PhysicalCopy, config: Config, target: Target, workdir: Path, timer: Timer
) -> str:
    """The newest pg_basebackup -Ft backup, checked with pg_verifybackup, WAL from the store
    spooled where the copy's restore_command finds it. What was restored."""
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.pitr is not None and backups is not None
    if not drills.pitr.base_store:
        raise DrillError(NO_BASE_BACKUP)
    files = _newest_base_backup(config, drills.pitr.base_store)
    size = sum(f.size for f in files)
    timer.result.values.update(backup=files[0].key.rpartition("/")[0], backup_bytes=size)
    require_space(workdir, size, drills.scratch.disk_factor)
    with timer.phase("download", size):
        _download(config, drills.pitr.base_store, files, workdir, timer)
    with timer.phase("restore"):
        copy.unpack(workdir)
        start = _start_segment(workdir / "backup_manifest", copy.segment_size())
    with timer.phase("download"):
        _spool_wal(config, backups, start, copy.wal, timer)
    with timer.phase("restore"):
        copy.recover(_recovery(target))
    return files[0].key.rpartition("/")[0]


def _restore_with_pgbackrest(copy: PhysicalCopy, target: Target, timer: Timer) -> str:
    """pgBackRest restores its newest backup set (checking every file against its own
    manifest) and fetches the WAL itself (archive-get), as a real recovery would."""
    assert target.drills is not None and target.drills.pitr is not None
    source = target.drills.pitr.pgbackrest
    assert source is not None
    with timer.phase("restore"):
        restore_command = copy.restore_pgbackrest(source.config, source.stanza)
        copy.recover({"restore_command": _quote(restore_command), **_recovery(target)})
    return f"pgBackRest stanza {source.stanza}"


def _newest_base_backup(config: Config, store_url: str) -> list[StoredObject]:
    """The files of the newest backup: one directory (prefix) per pg_basebackup -Ft run."""
    backups: dict[str, list[StoredObject]] = {}
    for obj in open_store(store_url, config.aws).list():
        directory, _, name = obj.key.rpartition("/")
        if tar_name(name, "base") or tar_name(name, "pg_wal") or name == "backup_manifest":
            backups.setdefault(directory, []).append(obj)
    usable = {
        d: files
        for d, files in backups.items()
        if any(tar_name(f.key.rpartition("/")[2], "base") for f in files)
        and any(f.key.endswith("backup_manifest") for f in files)
    }
    if not usable:
        raise DrillError(f"no base backup with a backup_manifest in {store_url}. {NO_BASE_BACKUP}")
    return max(usable.values(), key=lambda files: max(f.modified for f in files))


def _download(
    config: Config, store_url: str, files: list[StoredObject], into: Path, timer: Timer
) -> None:
    store = open_store(store_url, config.aws)
    for obj in files:
        with open(into / obj.key.rpartition("/")[2], "wb") as sink:
            for block in store.chunks(obj.key):
                sink.write(block)
                timer.remaining()


def _recovery(target: Target) -> dict[str, str]:
    assert target.drills is not None and target.drills.pitr is not None
    when = target.drills.pitr.target_time
    return {"recovery_target_time": _quote(when.isoformat())} if when else {}


def _start_segment(manifest: Path, segment_size: int) -> str:
    """The WAL file the backup starts in (its manifest's first WAL range)."""
    try:
        first = json.loads(manifest.read_text())["WAL-Ranges"][0]
        high, low = (int(part, 16) for part in first["Start-LSN"].split("/"))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DrillError(f"backup_manifest has no WAL range: {exc}") from None
    segno = ((high << 32) + low) // segment_size
    per_log = 0x100000000 // segment_size
    return f"{int(first['Timeline']):08X}{segno // per_log:08X}{segno % per_log:08X}"


def _archive(config: Config, backups: BackupsConfig) -> tuple[Store, list[StoredObject]]:
    """The target's WAL store and its archive's files, in its layout."""
    assert backups.wal_store
    store = open_store(backups.wal_store, config.aws)
    listed = list(store.list())
    layout = detect(listed) if backups.wal_layout == "auto" else backups.wal_layout
    return store, archive_files(listed, layout)


def _spool_wal(
    config: Config, backups: BackupsConfig, start: str, into: Path, timer: Timer
) -> None:
    """Every WAL file from the backup's start on (and every timeline history), decompressed as
    its tool wrote it, where the scratch server's restore_command copies them from."""
    store, objects = _archive(config, backups)
    for obj in objects:
        name = archive_file_name(obj.key)
        if not (name.endswith(".history") or (len(name) == 24 and name[8:] >= start[8:])):
            continue
        try:
            with open(into / name, "wb") as sink:
                for block in inflated(obj.key, store.chunks(obj.key)):
                    sink.write(block)
                    timer.remaining()
        except CompressionError as exc:
            raise DrillError(f"WAL archive {store.url}: {exc}") from None


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _role(pg: PostgresConfig | None) -> str:
    """A role the physical copy has: production's own (its roles came with the backup)."""
    return str(conninfo_to_dict(pg.dsn).get("user") or "postgres") if pg else "postgres"


def _database(pg: PostgresConfig | None) -> str:
    return str(conninfo_to_dict(pg.dsn).get("dbname") or "postgres") if pg else "postgres"


_RECOVERY_SQL = """
SELECT pg_is_in_recovery() AS recovering, pg_last_xact_replay_timestamp() AS at,
       pg_walfile_name(pg_last_wal_replay_lsn()) AS segment,
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
            )
        time.sleep(0.2)  # recovery runs in the server; this only looks, bounded by the deadline


def _continuity(config: Config, backups: BackupsConfig, end: RecoveryEnd) -> list[str]:
    """Recovery that ended before the newest segment of the archive's current timeline (as the
    wal_archive check reads it) stopped at a gap."""
    replayed = parse_wal_name(end.segment, end.segment_size) if end.segment else None
    store, objects = _archive(config, backups)
    newest = read_continuity(objects, end.segment_size, history_reader(store)).newest
    if replayed is None or replayed.segno is None or newest is None or newest.wal.segno is None:
        return []
    missing = newest.wal.segno - replayed.segno
    if missing > 0:
        return [
            f"recovery stopped at {end.segment} but the archive holds WAL up to {newest.name}: "
            f"a gap; {count(missing, 'segment')} of WAL after it cannot be replayed"
        ]
    return []
