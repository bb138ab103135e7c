"""barman-cloud: barman's catalogue and WAL layout in a bucket, under `<prefix>/<server>/`:
`base/<id>/backup.info`, `base/<id>/data.tar[.gz|.bz2|.xz|.snappy|.zst|.lz4]` (and a tar per
tablespace, named by the tablespace), `wals/<timeline+log>/<name>[...]`. What `base_store`
points at is the server's prefix: the source URL is its parent, the server its last part.

Its own restore: `barman-cloud-restore [--endpoint-url E] <source> <server> <id> <data
directory>`, WAL by `barman-cloud-wal-restore [--endpoint-url E] <source> <server> %f %p` (its
documented restore_command), with the credentials the team gives it (`drills.pitr.
restore_env`: boto3's own variables).
"""

from __future__ import annotations

import posixpath

from checks.backup_tools import barman
from checks.backup_tools.barman import is_info
from checks.backup_tools.base import BackupTool, RestoreSource, ToolRestore
from checks.support.stores import StoredObject
from core.programs import BARMAN_CLOUD_RESTORE


def owns(objects: list[StoredObject]) -> bool:
    """A backup of barman-cloud's: its data is a tar beside backup.info (barman's own keeps a
    `data/` directory)."""
    return any(
        posixpath.basename(o.key).startswith("data.tar") and "/base/" in f"/{o.key}"
        for o in objects
    )


def backup_files(
    objects: list[StoredObject], label: str
) -> tuple[StoredObject | None, list[StoredObject]]:
    """Backup `label`'s data tar (the cluster's base tar, backup_label inside) and its other
    files (a tar per tablespace), its backup.info aside."""
    prefix = f"/base/{label}/"
    files = [o for o in objects if prefix in f"/{o.key}" and not is_info(o.key)]
    data = [o for o in files if posixpath.basename(o.key).startswith("data.tar")]
    return (data[0] if len(data) == 1 else None), [o for o in files if o not in data[:1]]


def data_suffix(data: StoredObject) -> str:
    """How the data tar is compressed: `.tar`, `.tar.gz`, ..."""
    return posixpath.basename(data.key).removeprefix("data")


def source(store_url: str) -> tuple[str, str]:
    """(the source URL, the server name) barman-cloud's commands take, from the server's
    prefix `base_store` points at."""
    parent, _, server = store_url.rstrip("/").rpartition("/")
    return parent, server


def _endpoint(where: RestoreSource) -> list[str]:
    return ["--endpoint-url", where.endpoint_url] if where.endpoint_url else []


def _restore(where: RestoreSource, label: str, data: str) -> list[str]:
    url, server = source(where.store_url)
    return [RESTORE.path(), *_endpoint(where), url, server, label, data]


def _wal(where: RestoreSource, data: str) -> str:
    url, server = source(where.store_url)
    wal_restore = RESTORE.path().replace("barman-cloud-restore", "barman-cloud-wal-restore")
    return " ".join([wal_restore, *_endpoint(where), url, server, "%f", "%p"])


RESTORE = ToolRestore(program=BARMAN_CLOUD_RESTORE, base=_restore, wal=_wal)
TOOL = BackupTool(
    name="barman_cloud",
    title="barman-cloud",
    layout="barman",
    catalogue=barman.catalogue,
    restore=RESTORE,
)
