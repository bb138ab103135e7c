"""Physical base backups, from the catalogues the tools keep in their stores.

- pgBackRest: `backup.info` (an INI file whose `[backup:current]` values are JSON): each set's
  label, type (full, diff, incr), start and stop times, size, first WAL segment and error flag
  (page checksum errors found during the backup). Read from the store, never from an exit code:
  pgBackRest has exited 0 while reporting `status: error` (pgbackrest#2502).
- WAL-G: `basebackups_005/<name>_backup_stop_sentinel.json`: start LSN and timeline, times (V2
  sentinels; the object's time otherwise), sizes, `DeltaFrom` for a delta.
- barman-cloud: `base/<backup_id>/backup.info` (key=value lines): times, first WAL, size, status.
- pg_basebackup: one directory per backup holding `backup_manifest` (its WAL range) and the
  tar files; the manifest's time is the stop time.
"""

from __future__ import annotations

import configparser
import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from checks.support.stores import Store, StoredObject
from core.errors import CheckError

CatalogueLayout = Literal["pgbackrest", "walg", "barman", "pg_basebackup"]
CATALOGUE_LAYOUTS: tuple[CatalogueLayout, ...] = ("pgbackrest", "walg", "barman", "pg_basebackup")
MAX_CATALOGUE_BYTES = 64 << 20  # a backup_manifest lists every file: megabytes for big clusters
WALG_SENTINEL = "_backup_stop_sentinel.json"


@dataclass(frozen=True)
class BaseBackup:
    label: str
    kind: str  # full, diff, incr (pgBackRest), delta (WAL-G)
    started: float  # unix time
    stopped: float
    size: int  # bytes of the cluster it restores
    wal_start: str | None  # the first WAL segment recovery from it needs
    error: str | None  # why the tool marked it failed


def lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def segment_of(position: int, timeline: int, segment_size: int) -> str:
    segno = position // segment_size
    per_id = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def detect_catalogue(objects: Iterable[StoredObject]) -> CatalogueLayout | None:
    found: CatalogueLayout | None = None
    for obj in objects:
        name = posixpath.basename(obj.key)
        if name.endswith(WALG_SENTINEL):
            return "walg"
        if name == "backup.info.copy":
            return "pgbackrest"  # pgBackRest writes every info file twice
        if name == "backup.info" and "base/" in obj.key:
            found = "barman"
        elif name == "backup_manifest" and found is None:
            found = "pg_basebackup"
    return found


def _read(store: Store, key: str) -> bytes:
    data = bytearray()
    for chunk in store.chunks(key):
        data += chunk
        if len(data) > MAX_CATALOGUE_BYTES:
            raise CheckError("query", f"{key}: larger than {MAX_CATALOGUE_BYTES >> 20} MB")
    return bytes(data)


def _time(value: Any) -> float:
    """Unix time from an epoch number or an ISO 8601 / barman timestamp."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().replace(" ", "T", 1)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_catalogue(
    store: Store, objects: list[StoredObject], layout: CatalogueLayout, segment_size: int
) -> list[BaseBackup]:
    """Every base backup the catalogue lists, oldest first; CheckError naming a bad file."""
    if layout == "pgbackrest":
        infos = [o for o in objects if posixpath.basename(o.key) == "backup.info"]
        if len(infos) != 1:
            raise CheckError(
                "config",
                f"{len(infos)} pgBackRest backup.info files: point base_store at one stanza's "
                "backup/<stanza>/ directory",
            )
        backups = pgbackrest_backups(_read(store, infos[0].key).decode(), infos[0].key)
    elif layout == "walg":
        backups = [
            walg_backup(_read(store, o.key), o, segment_size)
            for o in objects
            if o.key.endswith(WALG_SENTINEL)
        ]
    elif layout == "barman":
        backups = [
            barman_backup(_read(store, o.key).decode(), o, objects)
            for o in objects
            if posixpath.basename(o.key) == "backup.info"
        ]
    else:
        backups = [
            basebackup_manifest(_read(store, o.key), o, objects, segment_size)
            for o in objects
            if posixpath.basename(o.key) == "backup_manifest"
        ]
    return sorted(backups, key=lambda b: (b.stopped, b.label))


def _bad(key: str, what: str) -> CheckError:
    return CheckError("query", f"{key}: {what}")


def pgbackrest_backups(text: str, key: str) -> list[BaseBackup]:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # labels keep their case
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise _bad(key, f"not a pgBackRest info file ({type(exc).__name__})") from None
    if not parser.has_section("backup:current"):
        return []
    out = []
    for label, raw in parser.items("backup:current"):
        try:
            fields = json.loads(raw)
            out.append(
                BaseBackup(
                    label=label,
                    kind=str(fields["backup-type"]),
                    started=float(fields["backup-timestamp-start"]),
                    stopped=float(fields["backup-timestamp-stop"]),
                    size=int(fields["backup-info-size"]),
                    wal_start=fields.get("backup-archive-start"),
                    error="page checksum errors found" if fields.get("backup-error") else None,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad(key, f"backup set {label}: {type(exc).__name__} {exc}") from None
    return out


def walg_backup(data: bytes, obj: StoredObject, segment_size: int) -> BaseBackup:
    name = posixpath.basename(obj.key).removesuffix(WALG_SENTINEL)
    try:
        fields = json.loads(data)
        timeline = int(fields.get("Timeline") or 1)
        stopped = _time(fields["FinishTime"]) if fields.get("FinishTime") else obj.modified
        return BaseBackup(
            label=name,
            kind="delta" if fields.get("DeltaFrom") else "full",
            started=_time(fields["StartTime"]) if fields.get("StartTime") else stopped,
            stopped=stopped,
            size=int(fields.get("UncompressedSize") or 0),
            wal_start=segment_of(int(fields["LSN"]), timeline, segment_size),
            error=None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad(obj.key, f"not a WAL-G sentinel ({type(exc).__name__} {exc})") from None


def barman_backup(text: str, info: StoredObject, objects: list[StoredObject]) -> BaseBackup:
    fields = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    directory = posixpath.dirname(info.key)
    size = fields.get("size", "")  # barman-cloud writes None: the files' sum then
    try:
        status = fields.get("status", "")
        return BaseBackup(
            label=posixpath.basename(directory),
            kind="full",
            started=_time(fields["begin_time"]),
            stopped=_time(fields["end_time"]),
            size=int(size) if size.isdigit() else _files_size(objects, directory),
            wal_start=fields.get("begin_wal") or None,
            error=None if status == "DONE" else f"status {status}: {fields.get('error', '')}",
        )
    except (ValueError, KeyError) as exc:
        raise _bad(info.key, f"not a barman backup.info ({type(exc).__name__} {exc})") from None


def _files_size(objects: list[StoredObject], directory: str) -> int:
    return sum(o.size for o in objects if posixpath.dirname(o.key) == directory)


def basebackup_manifest(
    data: bytes, manifest: StoredObject, objects: list[StoredObject], segment_size: int
) -> BaseBackup:
    directory = posixpath.dirname(manifest.key)
    try:
        ranges = json.loads(data)["WAL-Ranges"]
        first = ranges[0]
        wal_start = segment_of(lsn(first["Start-LSN"]), int(first["Timeline"]), segment_size)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _bad(manifest.key, f"not a backup_manifest ({type(exc).__name__})") from None
    files = [o for o in objects if posixpath.dirname(o.key) == directory]
    return BaseBackup(
        label=directory or manifest.key,
        kind="full",
        started=min(o.modified for o in files),
        stopped=manifest.modified,
        size=_files_size(objects, directory),
        wal_start=wal_start,
        error=None,
    )
