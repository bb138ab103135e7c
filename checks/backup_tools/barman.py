"""barman, on the host that keeps its backups: `<barman_home>/<server>/base/<id>/backup.info`
(before 3.13.2) or `<server>/meta/<id>-backup.info` (3.13.2 on), the files in `base/<id>/data/`,
WAL in `wals/<timeline+log>/<name>[.gz|.bz2|.xz|...]` with `.history` files in `wals/` itself.
barman-cloud writes the same catalogue and WAL layout into a bucket (`checks.backup_tools.
barman_cloud`).

- `backup.info` (key=value lines; barman/infofile.py `BackupInfo`): `status` DONE |
  WAITING_FOR_WALS (copied, its WAL not yet archived) | STARTED/EMPTY/SYNCING (running) |
  FAILED; `begin_time`, `end_time` (None until it stops), `begin_wal`, `cluster_size` (3.11+;
  what the cluster takes, barman-cloud's too), `size` (None in barman-cloud), `parent_backup_id`
  (3.11+ incremental). A running backup is one with STARTED, read with the catalogue.
- Its own restore, where drwatch runs beside the barman server: `barman -c <config> recover
  <server> <id> <data directory>`, WAL by `barman -c <config> get-wal <server> %f > "%p"`
  (barman-wal-restore is the same get-wal over SSH, for a PostgreSQL host elsewhere).
"""

from __future__ import annotations

import posixpath
import re

from checks.backup_tools.base import (
    BackupTool,
    BaseBackup,
    CatalogueRead,
    Claim,
    Pending,
    RestoreSource,
    ToolRestore,
    parse_time,
    read_bounded,
    unreadable,
)
from checks.support.stores import StoredObject
from core.programs import BARMAN

_WALS = re.compile(r"(?:^|/)wals/(?:[0-9A-F]{16}/)?[0-9A-F]{8}")
_RUNNING = {"STARTED", "EMPTY", "SYNCING"}


def label_of(info: StoredObject) -> str:
    """`base/<id>/backup.info` or `meta/<id>-backup.info`: the backup id."""
    name = posixpath.basename(info.key)
    if name.endswith("-backup.info"):
        return name.removesuffix("-backup.info")
    return posixpath.basename(posixpath.dirname(info.key))


def is_info(key: str) -> bool:
    name = posixpath.basename(key)
    return (name == "backup.info" and "base/" in key) or (
        name.endswith("-backup.info") and "meta/" in key
    )


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "None") else value


def fields_of(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def backup(text: str, info: StoredObject, files_size: int) -> BaseBackup:
    label = label_of(info)
    fields = fields_of(text)
    status = fields.get("status", "")
    begin, end = _none(fields.get("begin_time")), _none(fields.get("end_time"))
    # The cluster's size: barman's `cluster_size` (barman 3.11+, barman-cloud too: its
    # infofile.py), else `size` (barman's own backups; None in barman-cloud), else the files.
    size = _none(fields.get("cluster_size")) or _none(fields.get("size"))
    pending: Pending | None = None
    error = None
    if status == "WAITING_FOR_WALS":
        pending = "waiting_for_wal"
    elif status in _RUNNING:
        pending = "in_progress"
    elif status != "DONE":
        error = f"status {status or 'missing'}: {_none(fields.get('error')) or 'no reason given'}"
    elif end is None:
        error = "status DONE but no end_time"
    try:
        started = parse_time(begin) if begin else info.modified
        return BaseBackup(
            label=label,
            kind="incremental" if _none(fields.get("parent_backup_id")) else "full",
            started=started,
            stopped=parse_time(end) if end else started,
            size=int(size) if size and size.isdigit() else files_size,
            wal_start=_none(fields.get("begin_wal")),
            error=error,
            pending=pending,
            parent=_none(fields.get("parent_backup_id")),
        )
    except ValueError as exc:
        return unreadable(label, info, f"not a barman backup.info ({exc})")


def _files_size(objects: list[StoredObject], directory: str) -> int:
    """What a backup's directory holds, its own backup.info aside."""
    prefix = directory + "/"
    return sum(
        o.size for o in objects if o.key.startswith(prefix) and not o.key.endswith("backup.info")
    )


def server_prefix(info: StoredObject) -> str:
    return info.key.rpartition("meta/" if "meta/" in info.key else "base/")[0]


def catalogue(read: CatalogueRead) -> list[BaseBackup]:
    out = []
    for info in read.objects:
        if not is_info(info.key):
            continue
        label = label_of(info)
        files_size = _files_size(read.objects, f"{server_prefix(info)}base/{label}")
        try:
            text = read_bounded(read.store, info.key).decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append(unreadable(label, info, f"{info.key}: {exc}"))
            continue
        out.append(backup(text, info, files_size))
    return out


def _catalogue_file(key: str) -> Claim:
    return "maybe" if is_info(key) else "no"  # barman keeps a backup_manifest in data/ too


def _config(source: RestoreSource) -> list[str]:
    return [f"--config={source.config}"] if source.config else []


def _restore(source: RestoreSource, label: str, data: str) -> list[str]:
    return [RESTORE.path(), *_config(source), "recover", str(source.stanza), label, data]


def _wal(source: RestoreSource, data: str) -> str:
    return " ".join([RESTORE.path(), *_config(source), "get-wal", str(source.stanza), "%f",
                     '> "%p"'])  # fmt: skip


RESTORE = ToolRestore(program=BARMAN, base=_restore, wal=_wal)
TOOL = BackupTool(
    name="barman",
    title="barman",
    layout="barman",
    writes_wal=lambda key: "wals/" in key and _WALS.search(key) is not None,
    wal_files=lambda objects: [o for o in objects if "wals/" in o.key],
    catalogue_file=_catalogue_file,
    catalogue=catalogue,
    restore=RESTORE,
)
