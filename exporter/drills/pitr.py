"""The `pitr` drill: the newest physical base backup restored into a scratch data directory, the
target's WAL archive replayed on it (to its end, or to `target_time`), promoted, then checked.

`recovered_to`, the last replayed transaction's time, is what the archive really lets you
recover; recovery that stops before the newest archived segment is a gap, and a failure.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from checks.support.compression import CompressionError, inflated
from checks.support.continuity import history_reader, read_continuity
from checks.support.pg import fetch_one, session
from checks.support.stores import Store, StoredObject, open_store
from checks.support.tarballs import tablespace_oid, tar_name
from checks.support.timelines import MAX_HISTORY_BYTES
from checks.support.wal_layouts import archive_file_name, archive_files, detect
from checks.support.walnames import parse_wal_name, segments_per_xlogid
from core.config.postgres import PostgresConfig
from core.config.schema import Config, Target
from core.config.stores import BackupsConfig
from core.errors import CheckError
from core.humanize import count
from exporter.drills.copy_checks import check_copy, heartbeat_at_start, past_the_target
from exporter.drills.physical import PhysicalCopy
from exporter.drills.recovery_point import Point, choose, point_kind, random_lsn, window_start_label
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DRILL_FAILURES, DrillError, new_scratch_dir, require_space

SCENARIO = "pitr"
NO_BASE_BACKUP = (
    "PITR needs a physical base backup (pg_basebackup -Ft into drills.pitr.base_store, or "
    "drills.pitr.pgbackrest): WAL cannot be replayed on a logical restore of a dump"
)


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
            if drills.pitr.pgbackrest:
                restored = _restore_with_pgbackrest(copy, target, timer)
            else:
                restored = _restore_tar_backup(copy, config, target, workdir, timer)
            with timer.phase("restore"):
                dsn = copy.dsn("postgres", _role(target.postgres))
                end = _wait_promoted(copy, dsn, timer)
            with timer.phase("verify"):
                # Stopping at a target leaves later WAL unreplayed on purpose; a gap before
                # it ends recovery with an error instead (PostgreSQL refuses to promote).
                problems = []
                if not drills.pitr.target_time and timer.result.point == "newest":
                    problems = _continuity(_wal_store(config, target), backups, end)
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
        summary = f"recovered {restored} to {end.recovered_at}"
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


def _restore_tar_backup(
    copy: PhysicalCopy, config: Config, target: Target, workdir: Path, timer: Timer
) -> str:
    """The newest pg_basebackup -Ft backup, checked with pg_verifybackup, WAL from the store
    spooled where the copy's restore_command finds it. What was restored."""
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.pitr is not None and backups is not None
    if not drills.pitr.base_store:
        raise DrillError(NO_BASE_BACKUP)
    base_store = _base_store(config, target)
    wal_store = _wal_store(config, target)
    backups_found = _base_backups(base_store)
    taken = [max(f.modified for f in files) for files in backups_found]
    wal_objects = _archive(wal_store, backups)
    archive_end = max((o.modified for o in wal_objects), default=None)
    point = choose(point_kind(config, target), taken, archive_end)
    timer.result.point = point.asked
    if point.asked == "oldest":
        point = _window_start(point, base_store, wal_store, backups, backups_found, timer)
    files = backups_found[point.index]
    size = sum(f.size for f in files)
    timer.result.values.update(
        backup=files[0].key.rpartition("/")[0], backup_bytes=size, backup_time=taken[point.index]
    )
    timer.result.sizes = [
        (t, sum(f.size for f in b)) for t, b in zip(taken, backups_found, strict=True)
    ]
    require_space(workdir, size, drills.scratch.disk_factor)
    with timer.phase("download", size):
        _download(base_store, files, workdir, timer)
    with timer.phase("restore"):
        copy.unpack(workdir, backups.uncompressed_cap)
        segment_size = copy.segment_size()
        start, end_lsn = _wal_range(workdir / "backup_manifest", segment_size)
    settings = point.settings or _recovery(target)
    if point.asked == "random":
        settings = random_lsn(end_lsn, _archive_end_lsn(wal_objects, segment_size))
        timer.result.values["point_target"] = next(iter(settings.values())).strip("'")
    team = drills.pitr.restore_command
    if team:  # the team's own, as written: its options, keys and credentials are proven
        timer.result.values["wal_from"] = "restore_command"
        copy.use_restore_command(drills.pitr.restore_env, drills.pitr.restore_files)
        settings = {"restore_command": _quote(team), **settings}
    else:  # drwatch's own reader: the archive's bytes, whatever tool wrote them
        timer.result.values["wal_from"] = "drwatch"
        with timer.phase("download"):
            _spool_wal(wal_store, wal_objects, start, copy.wal, timer, segment_size)
    with timer.phase("restore"):
        copy.recover(settings)
    return files[0].key.rpartition("/")[0]


def _restore_with_pgbackrest(copy: PhysicalCopy, target: Target, timer: Timer) -> str:
    """pgBackRest restores its newest backup set that is a recovery point (`--set`; checking
    every file against its own manifest) and fetches the WAL itself (archive-get), as a real
    recovery would."""
    assert target.drills is not None and target.drills.pitr is not None
    source = target.drills.pitr.pgbackrest
    assert source is not None
    with timer.phase("restore"):
        restore_command, chosen, passed_over = copy.restore_pgbackrest(
            source.config, source.stanza
        )
        copy.recover({"restore_command": _quote(restore_command), **_recovery(target)})
    timer.result.values["backup"] = chosen
    passed = f", newer set(s) not recovery points: {'; '.join(passed_over)}" if passed_over else ""
    return f"pgBackRest stanza {source.stanza} set {chosen}{passed}"


def _window_start(
    point: Point,
    base: Store,
    wal: Store,
    backups: BackupsConfig,
    found: list[list[StoredObject]],
    timer: Timer,
) -> Point:
    """The oldest point: the backup the recovery window starts at, as drwatch reports it."""
    label = window_start_label(base, wal, backups)
    if label is None:
        raise DrillError(
            "no base backup has continuous WAL to the archive's newest: the recovery window "
            "is empty"
        )
    timer.result.values["window_start"] = label
    labels = [files[0].key.rpartition("/")[0] for files in found]
    return replace(point, index=labels.index(label)) if label in labels else point


def _base_store(config: Config, target: Target) -> Store:
    """The base backups' store: the primary one, or its cross-region copy (`from: replica`),
    reached with the replica's own access."""
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and pitr.base_store and backups is not None
    if pitr.source == "replica":
        assert pitr.replica_base_store
        return open_store(pitr.replica_base_store, backups.replica_aws or config.aws)
    return open_store(pitr.base_store, config.aws)


def _wal_store(config: Config, target: Target) -> Store:
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and backups is not None and backups.wal_store
    if pitr.source == "replica":
        assert backups.wal_replica_store
        return open_store(backups.wal_replica_store, backups.replica_aws or config.aws)
    return open_store(backups.wal_store, config.aws)


def _base_backups(store: Store) -> list[list[StoredObject]]:
    """The files of each backup, oldest first: one directory (prefix) per pg_basebackup -Ft
    run, with its base tar and its backup_manifest."""
    store_url = store.url
    backups: dict[str, list[StoredObject]] = {}
    for obj in store.list():
        directory, _, name = obj.key.rpartition("/")
        if tar_name(name, "base") or tar_name(name, "pg_wal") or name == "backup_manifest" or (
            tablespace_oid(name) is not None
        ):
            backups.setdefault(directory, []).append(obj)
    usable = {
        d: files
        for d, files in backups.items()
        if any(tar_name(f.key.rpartition("/")[2], "base") for f in files)
        and any(f.key.endswith("backup_manifest") for f in files)
    }
    if not usable:
        raise DrillError(f"no base backup with a backup_manifest in {store_url}. {NO_BASE_BACKUP}")
    return sorted(usable.values(), key=lambda files: max(f.modified for f in files))


def _download(store: Store, files: list[StoredObject], into: Path, timer: Timer) -> None:
    for obj in files:
        with open(into / obj.key.rpartition("/")[2], "wb") as sink:
            for block in store.chunks(obj.key):
                sink.write(block)
                timer.remaining()


def _recovery(target: Target) -> dict[str, str]:
    assert target.drills is not None and target.drills.pitr is not None
    when = target.drills.pitr.target_time
    return {"recovery_target_time": _quote(when.isoformat())} if when else {}


def _wal_range(manifest: Path, segment_size: int) -> tuple[str, int]:
    """The WAL file the backup starts in, and the position it is consistent from (its
    manifest's WAL range)."""
    try:
        ranges = json.loads(manifest.read_text())["WAL-Ranges"]
        start, end = (_lsn(ranges[0]["Start-LSN"]), _lsn(ranges[-1]["End-LSN"]))
        timeline = int(ranges[0]["Timeline"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise DrillError(f"backup_manifest has no WAL range: {exc}") from None
    segno = start // segment_size
    per_log = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}", end


def _lsn(text: str) -> int:
    high, low = (int(part, 16) for part in text.split("/"))
    return (high << 32) + low


def _archive_end_lsn(objects: list[StoredObject], segment_size: int) -> int:
    """Where the newest archived segment starts: a record follows any position before it."""
    segments = [
        w.segno for o in objects
        if (w := parse_wal_name(archive_file_name(o.key), segment_size)) and w.kind == "segment"
        and w.segno is not None
    ]  # fmt: skip
    return max(segments, default=0) * segment_size


def _archive(store: Store, backups: BackupsConfig) -> list[StoredObject]:
    """The WAL store's archive files, in its layout."""
    listed = list(store.list())
    layout = detect(listed) if backups.wal_layout == "auto" else backups.wal_layout
    return archive_files(listed, layout)


def _spool_wal(
    store: Store,
    objects: list[StoredObject],
    start: str,
    into: Path,
    timer: Timer,
    segment_size: int,
) -> None:
    """Every WAL file from the backup's start on (and every timeline history), decompressed as
    its tool wrote it (a segment to its size at most, a history to a history's), where the
    scratch server's restore_command copies them from."""
    for obj in objects:
        name = archive_file_name(obj.key)
        if not (name.endswith(".history") or (len(name) == 24 and name[8:] >= start[8:])):
            continue
        try:
            limit = MAX_HISTORY_BYTES if name.endswith(".history") else segment_size
            with open(into / name, "wb") as sink:
                for block in inflated(obj.key, store.chunks(obj.key), limit):
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


def _continuity(store: Store, backups: BackupsConfig, end: RecoveryEnd) -> list[str]:
    """Recovery that ended before the newest segment of the archive's current timeline (as the
    wal_archive check reads it) stopped at a gap."""
    replayed = parse_wal_name(end.segment, end.segment_size) if end.segment else None
    objects = _archive(store, backups)
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

