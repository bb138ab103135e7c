"""What a pitr drill fetches from the stores, and the settings it gives recovery: the base
backups' store and the WAL store (the primary ones or their cross-region copies, each reached
with its own access), the archive's WAL files in its tool's layout, spooled decompressed where
the copy's restore_command finds them."""

from __future__ import annotations

from pathlib import Path

from checks.backup_tools.registry import archive_files, wal_layout
from checks.support.compression import CompressionError, inflated
from checks.support.stores import Store, StoredObject, open_store
from checks.support.timelines import MAX_HISTORY_BYTES
from checks.support.walnames import archive_file_name, parse_wal_name
from core.config.schema import Config, Target
from core.config.stores import BackupsConfig
from exporter.drills.result import Timer
from exporter.drills.scratch import DrillError


def base_store_of(config: Config, target: Target) -> Store:
    """The base backups' store: the primary one, or its cross-region copy (`from: replica`),
    reached with the replica's own access."""
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and pitr.base_store and backups is not None
    if pitr.source == "replica":
        assert pitr.replica_base_store
        return open_store(pitr.replica_base_store, backups.replica_aws or config.aws)
    return open_store(pitr.base_store, config.aws)


def wal_store_of(config: Config, target: Target) -> Store:
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and backups is not None and backups.wal_store
    if pitr.source == "replica":
        assert backups.wal_replica_store
        return open_store(backups.wal_replica_store, backups.replica_aws or config.aws)
    return open_store(backups.wal_store, config.aws)


def download(store: Store, files: list[StoredObject], into: Path, timer: Timer) -> None:
    for obj in files:
        with open(into / obj.key.rpartition("/")[2], "wb") as sink:
            for block in store.chunks(obj.key):
                sink.write(block)
                timer.remaining()


def recovery(target: Target) -> dict[str, str]:
    assert target.drills is not None and target.drills.pitr is not None
    when = target.drills.pitr.target_time
    return {"recovery_target_time": quote(when.isoformat())} if when else {}


def archive_end_lsn(objects: list[StoredObject], segment_size: int) -> int:
    """Where the newest archived segment starts: a record follows any position before it."""
    segments = [
        w.segno for o in objects
        if (w := parse_wal_name(archive_file_name(o.key), segment_size)) and w.kind == "segment"
        and w.segno is not None
    ]  # fmt: skip
    return max(segments, default=0) * segment_size


def archive(store: Store, backups: BackupsConfig) -> list[StoredObject]:
    """The WAL store's archive files, in its layout."""
    listed = list(store.list())
    return archive_files(listed, wal_layout(listed, backups.wal_layout))


def spool_wal(
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


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
