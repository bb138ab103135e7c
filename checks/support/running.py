"""Base backups that are running (or were abandoned mid-way): what each tool leaves while it
copies, before its catalogue lists the backup.

- pgBackRest: `<label>/` (with its `backup.manifest.copy`, saved when the backup starts) whose
  label `backup.info` does not list yet; the label holds its start time;
- WAL-G: files under `basebackups_005/<name>/` without `<name>_backup_stop_sentinel.json`;
- pg_basebackup: a directory with its tar files and no `backup_manifest` (written last);
- barman: `status=STARTED` in its own backup.info (read with the catalogue).

Each is reported as running since its first file (not failed, not a recovery point), so a
4-hour backup is not "the newest backup is old", and one that never finishes shows its age.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from checks.support.catalogue_formats import WALG_SENTINEL, BaseBackup
from checks.support.stores import StoredObject
from checks.support.tarballs import tar_name

_PGBACKREST_LABEL = re.compile(r"^(\d{8}-\d{6})F(?:_(\d{8}-\d{6})[DI])?$")


def _running(label: str, files: list[StoredObject], started: float | None = None) -> BaseBackup:
    first = min(o.modified for o in files)
    return BaseBackup(
        label=label,
        kind="full",
        started=started if started is not None else first,
        stopped=max(o.modified for o in files),  # its latest write: how recently it moved
        size=sum(o.size for o in files),
        wal_start=None,
        error=None,
        pending="in_progress",
    )


def _by_top(objects: Iterable[StoredObject], prefix: str = "") -> dict[str, list[StoredObject]]:
    out: dict[str, list[StoredObject]] = {}
    for obj in objects:
        if obj.key.startswith(prefix) and "/" in obj.key[len(prefix) :]:
            out.setdefault(obj.key[len(prefix) :].split("/", 1)[0], []).append(obj)
    return out


def running_backups(objects: list[StoredObject], layout: str, listed: set[str]) -> list[BaseBackup]:
    """Backups under way (or abandoned) in the store that the catalogue (`listed`) lacks."""
    out: list[BaseBackup] = []
    if layout == "pgbackrest":
        for label, files in _by_top(objects).items():
            match = _PGBACKREST_LABEL.match(label)
            if match and label not in listed:
                stamp = match[2] or match[1]
                when = datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp()
                out.append(_running(label, files, when))
    elif layout == "walg":
        sentinels = {
            posixpath.basename(o.key).removesuffix(WALG_SENTINEL)
            for o in objects
            if o.key.endswith(WALG_SENTINEL)
        }
        for name, files in _by_top(objects, "basebackups_005/").items():
            if name not in sentinels:
                out.append(_running(name, files))
    elif layout == "pg_basebackup":
        directories: dict[str, list[StoredObject]] = {}
        for obj in objects:
            directories.setdefault(posixpath.dirname(obj.key), []).append(obj)
        for directory, files in directories.items():
            names = {posixpath.basename(o.key) for o in files}
            if "backup_manifest" not in names and any(tar_name(n, "base") for n in names):
                out.append(_running(directory, files))
    return out
