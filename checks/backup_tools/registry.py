"""Every backup tool drwatch knows, and the questions checks and drills ask of them: which tool
wrote an archive or a catalogue, which keys are its WAL, what its catalogue lists, which tool
restores a store's backups. Adding a tool is its module and one line in TOOLS."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from checks.backup_tools import barman, barman_cloud, pg_basebackup, pgbackrest, plain, walg
from checks.backup_tools.base import BackupTool, BaseBackup, CatalogueRead
from checks.support.stores import Store, StoredObject
from core.errors import CheckError

# The order decides between tools that may write the same file: barman keeps a backup_manifest
# in base/<id>/data/ too, so its backup.info wins over pg_basebackup's manifest.
TOOLS: tuple[BackupTool, ...] = (
    pgbackrest.TOOL,
    walg.TOOL,
    barman.TOOL,
    barman_cloud.TOOL,
    pg_basebackup.TOOL,
    plain.TOOL,
)
WAL_LAYOUTS = tuple(dict.fromkeys(t.layout for t in TOOLS if t.name != "pg_basebackup"))
CATALOGUE_LAYOUTS = tuple(dict.fromkeys(t.layout for t in TOOLS if t.catalogue is not None))


def tool(name: str) -> BackupTool:
    return next(t for t in TOOLS if t.name == name)


def _of_layout(layout: str) -> BackupTool:
    """The tool that reads a layout (the first: barman for barman-cloud's catalogue too)."""
    return next(t for t in TOOLS if t.layout == layout)


def detect_wal_layout(objects: Iterable[StoredObject]) -> str:
    """The layout an archive's keys are written in: the first key only one tool writes decides;
    none: a plain directory."""
    writers = [t for t in TOOLS if t.writes_wal is not None]
    for obj in objects:
        for writer in writers:
            if writer.writes_wal(obj.key):  # type: ignore[misc]
                return writer.layout
    return plain.TOOL.layout


def wal_layout(objects: list[StoredObject], configured: str) -> str:
    """`backups.wal_layout` as configured, or detected when it says `auto`."""
    return detect_wal_layout(objects) if configured == "auto" else configured


def archive_files(objects: list[StoredObject], layout: str) -> list[StoredObject]:
    """The keys that are this archive's WAL in its tool's layout."""
    wal_files = _of_layout(layout).wal_files
    return wal_files(objects) if wal_files is not None else objects


def detect_catalogue(objects: Iterable[StoredObject]) -> str | None:
    """The layout of the catalogue a store holds: a file only one tool writes decides at once;
    else the first tool (in TOOLS' order) one of whose files is there."""
    readers = [t for t in TOOLS if t.catalogue_file is not None]
    found: int | None = None
    for obj in objects:
        for rank, reader in enumerate(readers):
            claim = reader.catalogue_file(obj.key)  # type: ignore[misc]
            if claim == "yes":
                return reader.layout
            if claim == "maybe" and (found is None or rank < found):
                found = rank
    return readers[found].layout if found is not None else None


def restoring_tool(layout: str, objects: list[StoredObject]) -> BackupTool:
    """The tool whose own restore puts a store's backups back: barman-cloud's where its data
    tars are there, else the layout's own."""
    if layout == barman.TOOL.layout and barman_cloud.owns(objects):
        return barman_cloud.TOOL
    return _of_layout(layout)


def read_catalogue(
    store: Store,
    objects: list[StoredObject],
    layout: str,
    segment_size: int,
    cipher_pass: str | None = None,
) -> list[BaseBackup]:
    """Every base backup the catalogue lists, and those under way it does not list yet, oldest
    first, chains checked."""
    reader = _of_layout(layout)
    if reader.catalogue is None:
        raise CheckError("config", f"{reader.title} keeps no catalogue of base backups")
    backups = reader.catalogue(CatalogueRead(store, objects, segment_size, cipher_pass))
    if reader.running is not None:
        backups += reader.running(objects, {b.label for b in backups})
    return chains_checked(sorted(backups, key=lambda b: (b.stopped, b.label)))


def chains_checked(backups: list[BaseBackup]) -> list[BaseBackup]:
    """A backup that needs another (diff, incr, delta, incremental) is no recovery point when
    that one is missing, failed or not complete: oldest first, so parents are judged first."""
    by_label: dict[str, BaseBackup] = {}
    out = []
    for backup in backups:
        parent = by_label.get(backup.parent) if backup.parent else None
        if backup.parent and backup.error is None:
            if parent is None:
                backup = dataclasses.replace(
                    backup, error=f"needs {backup.parent}, which is not in the catalogue"
                )
            elif parent.error is not None or parent.pending is not None:
                why = parent.error or parent.pending
                backup = dataclasses.replace(
                    backup, error=f"needs {backup.parent}, which is no recovery point ({why})"
                )
        by_label[backup.label] = backup
        out.append(backup)
    return out
