"""What every backup tool module declares (`BackupTool`), and what a catalogue entry becomes
(`BaseBackup`), with the small readers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from checks.support.stores import Store, StoredObject
from core.errors import CheckError
from core.programs import Program

Pending = Literal["in_progress", "waiting_for_wal"]
Claim = Literal["yes", "maybe", "no"]  # whether a key is a tool's catalogue
MAX_CATALOGUE_BYTES = 64 << 20  # a backup_manifest lists every file: megabytes for big clusters


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


@dataclass(frozen=True)
class CatalogueRead:
    """What a tool's catalogue reader is given: the store, its listing, the server's WAL
    segment size, and pgBackRest's repository passphrase where one is configured."""

    store: Store
    objects: list[StoredObject]
    segment_size: int
    cipher_pass: str | None = None


@dataclass(frozen=True)
class RestoreSource:
    """Where the tool's own restore reads from, as the drill knows it: the backups' store URL
    (the tool's repository or a server's prefix in it), an S3 endpoint, the tool's config file
    and stanza or server name where the tool has them."""

    store_url: str
    endpoint_url: str | None = None
    config: str | None = None
    stanza: str | None = None


@dataclass(frozen=True)
class ToolRestore:
    """How the tool itself restores: the program that must be installed, the command line
    that puts backup `label` into a data directory, and the restore_command that fetches WAL
    (`%f`, `%p`), each as the team would type it."""

    program: Program
    base: Callable[[RestoreSource, str, str], list[str]]  # (source, label, data directory)
    wal: Callable[[RestoreSource, str], str]  # (source, data directory)

    def path(self) -> str:
        """The program as drwatch's PATH finds it (its name when absent: a drill checks it is
        installed before it runs it)."""
        return self.program.find() or self.program.name


@dataclass(frozen=True)
class BackupTool:
    """One backup tool, as a check declares itself: registered once in `registry.TOOLS`.

    `layout` is the name `backups.wal_layout`/`base_layout` give it (barman and barman-cloud
    write the same layout). `writes_wal(key)`: a WAL key only this tool writes; `wal_files`:
    the keys of a listing that are its archive's WAL. `catalogue_file(key)`: whether a key is
    its catalogue (`maybe` when another tool may also write it); `catalogue`: every backup it
    lists; `running`: the backups under way its catalogue does not list yet."""

    name: str
    title: str
    layout: str
    writes_wal: Callable[[str], bool] | None = None
    wal_files: Callable[[list[StoredObject]], list[StoredObject]] | None = None
    catalogue_file: Callable[[str], Claim] | None = None
    catalogue: Callable[[CatalogueRead], list[BaseBackup]] | None = None
    running: Callable[[list[StoredObject], set[str]], list[BaseBackup]] | None = None
    restore: ToolRestore | None = None
    notes: tuple[str, ...] = field(default=())


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


def read_bounded(store: Store, key: str) -> bytes:
    """A catalogue file, whole, at most MAX_CATALOGUE_BYTES."""
    data = bytearray()
    for chunk in store.chunks(key):
        data += chunk
        if len(data) > MAX_CATALOGUE_BYTES:
            raise CheckError("query", f"{key}: larger than {MAX_CATALOGUE_BYTES >> 20} MB")
    return bytes(data)


def running_since(
    label: str, files: list[StoredObject], started: float | None = None
) -> BaseBackup:
    """A backup under way (or abandoned) from its files: running since the first, moved last at
    the newest; its size what it wrote so far."""
    return BaseBackup(
        label=label,
        kind="full",
        started=started if started is not None else min(o.modified for o in files),
        stopped=max(o.modified for o in files),
        size=sum(o.size for o in files),
        wal_start=None,
        error=None,
        pending="in_progress",
    )


def by_top(objects: list[StoredObject], prefix: str = "") -> dict[str, list[StoredObject]]:
    """The objects under `prefix`, by the directory they are in directly below it."""
    out: dict[str, list[StoredObject]] = {}
    for obj in objects:
        if obj.key.startswith(prefix) and "/" in obj.key[len(prefix) :]:
            out.setdefault(obj.key[len(prefix) :].split("/", 1)[0], []).append(obj)
    return out
