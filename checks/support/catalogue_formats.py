"""Each backup tool's catalogue entry, field by field, into a BaseBackup.

- pgBackRest `backup.info` (INI, `[backup:current]` values are JSON): `backup-type` (full, diff,
  incr), `backup-prior` (the set a diff or incr needs), `backup-timestamp-start`/`-stop`,
  `backup-info-size`, `backup-archive-start`, `backup-error` (page checksum errors; pgBackRest
  has exited 0 while reporting `status: error`, pgbackrest#2502). A set appears there only once
  complete.
- WAL-G `basebackups_005/<name>_backup_stop_sentinel.json`: `LSN`, `Timeline` (V2 sentinels;
  a V1 sentinel has none: the name `base_<timeline><log><seg>` says it), `StartTime`,
  `FinishTime`, `UncompressedSize`, `DeltaFrom`.
- barman `backup.info` (key=value lines; barman/infofile.py `BackupInfo`): local
  `base/<id>/backup.info` (before 3.13.2) or `meta/<id>-backup.info` (3.13.2 on), barman-cloud
  `<server>/base/<id>/backup.info`; `status` DONE | WAITING_FOR_WALS (copied, its WAL not yet
  archived) | STARTED/EMPTY/SYNCING (running) | FAILED; `begin_time`, `end_time` (None until it
  stops), `begin_wal`, `cluster_size` (3.11+; what the cluster takes, barman-cloud's too), `size`
  (None in barman-cloud), `parent_backup_id` (3.11+ incremental).
- pg_basebackup `backup_manifest` (JSON): `PostgreSQL-Backup-Manifest-Version` (2 from
  PostgreSQL 17, with `System-Identifier`), `WAL-Ranges` (the first range's `Start-LSN` and
  `Timeline`), `Files` (`INCREMENTAL.`-prefixed names in a PostgreSQL 17 incremental backup,
  whose `backup_label` says `INCREMENTAL FROM LSN`/`TLI`: the start of the backup it needs).
"""

from __future__ import annotations

import configparser
import json
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from checks.support.stores import StoredObject

Pending = Literal["in_progress", "waiting_for_wal"]
WALG_SENTINEL = "_backup_stop_sentinel.json"


@dataclass(frozen=True)
class BaseBackup:
    label: str
    kind: str  # full, diff, incr (pgBackRest), delta (WAL-G), incremental (barman, PG 17)
    started: float  # unix time
    stopped: float
    size: int  # bytes of the cluster it restores
    wal_start: str | None  # the first WAL segment recovery from it needs
    error: str | None  # why it is no recovery point: the tool marked it failed, or unreadable
    pending: Pending | None = None  # not failed, not yet a recovery point
    parent: str | None = None  # the backup a diff, incr, delta or incremental one needs
    manifest_version: int | None = None  # pg_basebackup's backup_manifest format


class BadEntry(ValueError):
    """A catalogue entry that cannot be read: one failed backup, named; the rest are read."""


def lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def segment_of(position: int, timeline: int, segment_size: int) -> str:
    segno = position // segment_size
    per_id = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def parse_time(value: Any) -> float:
    """Unix time from an epoch number or an ISO 8601 / barman timestamp."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().replace(" ", "T", 1)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def unreadable(label: str, obj: StoredObject, why: str) -> BaseBackup:
    return BaseBackup(label, "unknown", obj.modified, obj.modified, 0, None, f"unreadable: {why}")


def pgbackrest_backups(text: str, key: str) -> list[BaseBackup]:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # labels keep their case
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise BadEntry(f"not a pgBackRest info file ({type(exc).__name__})") from None
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
                    parent=fields.get("backup-prior") or None,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            why = f"{key}: backup set {label}: {type(exc).__name__} {exc}"
            out.append(BaseBackup(label, "unknown", 0.0, 0.0, 0, None, f"unreadable: {why}"))
    return out


def walg_backup(data: bytes, obj: StoredObject, segment_size: int) -> BaseBackup:
    name = posixpath.basename(obj.key).removesuffix(WALG_SENTINEL)
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


def barman_label(info: StoredObject) -> str:
    """`base/<id>/backup.info` or `meta/<id>-backup.info`: the backup id."""
    name = posixpath.basename(info.key)
    if name.endswith("-backup.info"):
        return name.removesuffix("-backup.info")
    return posixpath.basename(posixpath.dirname(info.key))


_BARMAN_RUNNING = {"STARTED", "EMPTY", "SYNCING"}


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "None") else value


def barman_backup(text: str, info: StoredObject, files_size: int) -> BaseBackup:
    label = barman_label(info)
    fields = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    status = fields.get("status", "")
    begin, end = _none(fields.get("begin_time")), _none(fields.get("end_time"))
    # The cluster's size: barman's `cluster_size` (barman 3.11+, barman-cloud too: its
    # infofile.py), else `size` (barman's own backups; None in barman-cloud), else the files.
    size = _none(fields.get("cluster_size")) or _none(fields.get("size"))
    pending: Pending | None = None
    error = None
    if status == "WAITING_FOR_WALS":
        pending = "waiting_for_wal"
    elif status in _BARMAN_RUNNING:
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


@dataclass(frozen=True)
class ManifestFacts:
    version: int
    timeline: int
    start_lsn: int
    incremental: bool


def manifest_facts(data: bytes) -> ManifestFacts:
    try:
        manifest = json.loads(data)
        first = manifest["WAL-Ranges"][0]
        files = manifest.get("Files") or []
        return ManifestFacts(
            version=int(manifest.get("PostgreSQL-Backup-Manifest-Version", 1)),
            timeline=int(first["Timeline"]),
            start_lsn=lsn(first["Start-LSN"]),
            incremental=any(
                posixpath.basename(str(f.get("Path", ""))).startswith("INCREMENTAL.") for f in files
            ),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BadEntry(f"not a backup_manifest ({type(exc).__name__})") from None


def incremental_from(label_text: str) -> tuple[int, int] | None:
    """(timeline, LSN) an incremental backup's backup_label says it was taken from."""
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in label_text.splitlines())
    )
    try:
        return int(fields["INCREMENTAL FROM TLI"]), lsn(fields["INCREMENTAL FROM LSN"])
    except (KeyError, ValueError):
        return None
