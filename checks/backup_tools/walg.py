"""WAL-G: `basebackups_005/<name>_backup_stop_sentinel.json` beside each backup's directory
`basebackups_005/<name>/`, WAL in `wal_005/<name>.<lz4|lzma|zst|br>`.

- The sentinel (written last: a directory without one is a backup under way or abandoned):
  `LSN`, `Timeline` (V2 sentinels; a V1 sentinel has none: the name `base_<timeline><log><seg>`
  says it), `StartTime`, `FinishTime`, `UncompressedSize`, `DeltaFrom`.
- Its own restore: `wal-g backup-fetch <data directory> <name>`, WAL by `wal-g wal-fetch "%f"
  "%p"` (its documented restore_command), both with the team's `--config` file. No WAL-G
  binary installs here (no Debian package): the command lines are tested as built, and the
  catalogue against sentinels from WAL-G's own test data.
"""

from __future__ import annotations

import json
import posixpath

from checks.backup_tools.base import (
    BackupTool,
    BaseBackup,
    CatalogueRead,
    Claim,
    RestoreSource,
    ToolRestore,
    by_top,
    parse_time,
    read_bounded,
    running_since,
    segment_of,
    unreadable,
)
from checks.support.stores import StoredObject
from core.programs import WALG

SENTINEL = "_backup_stop_sentinel.json"
WALS = "wal_005/"
BASES = "basebackups_005/"


def backup(data: bytes, obj: StoredObject, segment_size: int) -> BaseBackup:
    name = posixpath.basename(obj.key).removesuffix(SENTINEL)
    try:
        fields = json.loads(data)
        # V1 sentinels have no Timeline: base_<24 hex digits> names the start segment's file.
        named = int(name[5:13], 16) if name.startswith("base_") and len(name) >= 29 else 1
        timeline = int(fields.get("Timeline") or named)
        stopped = parse_time(fields["FinishTime"]) if fields.get("FinishTime") else obj.modified
        delta = fields.get("DeltaFrom") or None
        return BaseBackup(
            label=name,
            kind="delta" if delta else "full",
            started=parse_time(fields["StartTime"]) if fields.get("StartTime") else stopped,
            stopped=stopped,
            size=int(fields.get("UncompressedSize") or 0),
            wal_start=segment_of(int(fields["LSN"]), timeline, segment_size),
            error=None,
            parent=delta,
        )
    except (ValueError, KeyError, TypeError) as exc:
        return unreadable(name, obj, f"not a WAL-G sentinel ({type(exc).__name__} {exc})")


def _catalogue(read: CatalogueRead) -> list[BaseBackup]:
    return [
        backup(read_bounded(read.store, o.key), o, read.segment_size)
        for o in read.objects
        if o.key.endswith(SENTINEL)
    ]


def _running(objects: list[StoredObject], listed: set[str]) -> list[BaseBackup]:
    sentinels = {
        posixpath.basename(o.key).removesuffix(SENTINEL)
        for o in objects
        if o.key.endswith(SENTINEL)
    }
    return [
        running_since(name, files)
        for name, files in by_top(objects, BASES).items()
        if name not in sentinels
    ]


def _catalogue_file(key: str) -> Claim:
    return "yes" if key.endswith(SENTINEL) or key.startswith(BASES) else "no"


def _config(source: RestoreSource) -> list[str]:
    return [f"--config={source.config}"] if source.config else []


def _restore(source: RestoreSource, label: str, data: str) -> list[str]:
    return [RESTORE.path(), *_config(source), "backup-fetch", data, label]


def _wal(source: RestoreSource, data: str) -> str:
    return " ".join([RESTORE.path(), *_config(source), "wal-fetch", '"%f"', '"%p"'])


RESTORE = ToolRestore(program=WALG, base=_restore, wal=_wal)
TOOL = BackupTool(
    name="walg",
    title="WAL-G",
    layout="walg",
    writes_wal=lambda key: WALS in key,
    wal_files=lambda objects: [o for o in objects if WALS in o.key],
    catalogue_file=_catalogue_file,
    catalogue=_catalogue,
    running=_running,
    restore=RESTORE,
)
