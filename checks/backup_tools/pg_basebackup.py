"""pg_basebackup: one directory (prefix) per backup, as `-Ft` writes it: `base.tar`,
`pg_wal.tar` when WAL is included (`-X fetch|stream`), `<oid>.tar` per tablespace, each
compressed or not (`-Z gzip|lz4|zstd`: `.tar.gz`, `.tar.lz4`, `.tar.zst`), and `backup_manifest`
(written last: a directory with tars and no manifest is a backup under way or abandoned).

- `backup_manifest` (JSON): `PostgreSQL-Backup-Manifest-Version` (2 from PostgreSQL 17, with
  `System-Identifier`), `WAL-Ranges` (the first range's `Start-LSN` and `Timeline`), `Files`
  (`INCREMENTAL.`-prefixed names in a PostgreSQL 17 incremental backup, whose `backup_label` says
  `INCREMENTAL FROM LSN`/`TLI`: the start of the backup it needs).
- `-Fp` writes the cluster's own files instead: named for what it is, never half-read.
- Its restore is PostgreSQL's documented one: base.tar into the data directory, pg_wal.tar into
  pg_wal, each `<oid>.tar` into a directory of its own linked as `pg_tblspc/<oid>`, checked with
  pg_verifybackup (`-n` when the backup holds no WAL: the archive's is needed), then
  `tablespace_map` pointed at where the tablespaces are. Unpacking is drwatch's safe reader
  (`checks.support.tarballs`): tar itself would follow what the archive says.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import posixpath
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checks.backup_tools.base import (
    BackupTool,
    BadEntry,
    BaseBackup,
    CatalogueRead,
    Claim,
    lsn,
    read_bounded,
    running_since,
    segment_of,
    unreadable,
)
from checks.support.stores import Store, StoredObject
from checks.support.tarballs import TAR_SUFFIXES, UNREADABLE, UnsafeMember, read_member, unpack
from checks.support.verify import NoSpace, Verdict, copy_object, one_at_a_time, run_checker
from core.programs import PG_VERIFYBACKUP

MANIFEST = "backup_manifest"
PLAIN_FORMAT = (
    "a plain-format (-Fp) backup: drwatch verifies and restores pg_basebackup -Ft backups "
    "(take them with -Ft, or point base_store at a tool's repository)"
)
MAX_LABEL_SEARCH = 16  # tar members looked at for backup_label (pg_basebackup sends it first)


def tar_name(name: str, stem: str) -> bool:
    """Whether `name` is the tar file `stem` (base, pg_wal) in any compression pg_basebackup
    writes."""
    return any(name == stem + suffix for suffix in TAR_SUFFIXES)


def base_tar(suffix: str) -> str:
    """The name of a base tar compressed as `suffix` (`.tar.gz`...)."""
    return "base" + suffix


def tablespace_oid(name: str) -> str | None:
    """The tablespace a `-Ft` backup's `<oid>.tar[.gz|.lz4|.zst]` holds, or None."""
    stem = name.split(".", 1)[0]
    return stem if stem.isdigit() and tar_name(name, stem) else None


def destination(name: str, data: Path, tablespaces: Path) -> tuple[Path, str | None] | None:
    """Where a backup's tar file is unpacked (and the tablespace oid it holds), or None for a
    file that is not one of its tars."""
    if not name.endswith(TAR_SUFFIXES):
        return None
    if (oid := tablespace_oid(name)) is not None:
        return tablespaces / oid, oid
    into = {"base": data, "pg_wal": data / "pg_wal"}.get(name.split(".")[0])
    return (into, None) if into is not None else None


def link_tablespaces(data: Path, placed: dict[str, Path]) -> None:
    """A tar backup's tablespaces where they were unpacked (`placed`: oid -> directory) linked
    as pg_tblspc/<oid>, as PostgreSQL documents: what pg_verifybackup follows."""
    if not placed:
        return
    links = data / "pg_tblspc"
    links.mkdir(mode=0o700, exist_ok=True)
    for oid, where in placed.items():
        link = links / oid
        if link.is_symlink() or link.exists():
            raise UnsafeMember(f"pg_tblspc/{oid} is already in the backup")
        link.symlink_to(where)


def remap_tablespaces(data: Path, placed: dict[str, Path]) -> None:
    """tablespace_map (what recovery recreates the links from) pointed at `placed`, after the
    backup was verified against its manifest: the copy never reaches the tablespaces' original
    directories on this host."""
    if not placed:
        return
    try:
        fd = os.open(data / "tablespace_map", os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_NOFOLLOW)
    except OSError as exc:
        raise UnsafeMember(f"tablespace_map: {exc.strerror}") from None
    with os.fdopen(fd, "w") as mapping:
        mapping.write("".join(f"{oid} {where}\n" for oid, where in sorted(placed.items())))


def verify_command(data: Path, has_wal: bool) -> list[str]:
    """pg_verifybackup of an unpacked backup; `-n` when it holds no WAL (base.tar always
    carries pg_wal/, empty with -X none: the WAL is then the archive's to give)."""
    binary = PG_VERIFYBACKUP.find() or PG_VERIFYBACKUP.name
    return [binary, *([] if has_wal else ["-n"]), str(data)]


def backups_in(objects: list[StoredObject]) -> list[list[StoredObject]]:
    """The files of each complete backup (its base tar and its backup_manifest), oldest
    first: one directory (prefix) per pg_basebackup -Ft run."""
    backups: dict[str, list[StoredObject]] = {}
    for obj in objects:
        directory, _, name = obj.key.rpartition("/")
        if destination(name, Path(), Path()) is not None or name == MANIFEST:
            backups.setdefault(directory, []).append(obj)
    usable = [
        files
        for files in backups.values()
        if any(tar_name(f.key.rpartition("/")[2], "base") for f in files)
        and any(f.key.endswith(MANIFEST) for f in files)
    ]
    return sorted(usable, key=lambda files: max(f.modified for f in files))


def wal_range(manifest: bytes, segment_size: int) -> tuple[str, int]:
    """The WAL file the backup starts in, and the position it is consistent from (its
    manifest's WAL range). ValueError when the manifest has none."""
    try:
        ranges = json.loads(manifest)["WAL-Ranges"]
        start, end = lsn(ranges[0]["Start-LSN"]), lsn(ranges[-1]["End-LSN"])
        timeline = int(ranges[0]["Timeline"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"backup_manifest has no WAL range: {exc}") from None
    return segment_of(start, timeline, segment_size), end


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


def _catalogue(read: CatalogueRead) -> list[BaseBackup]:
    """pg_basebackup directories; a PostgreSQL 17 incremental one needs the backup whose start
    its backup_label names (`pg_combinebackup` restores the chain, never one alone)."""
    store, objects, segment_size = read.store, read.objects, read.segment_size
    by_directory: dict[str, list[StoredObject]] = {}
    for obj in objects:
        by_directory.setdefault(posixpath.dirname(obj.key), []).append(obj)
    out: list[BaseBackup] = []
    wanted: dict[str, tuple[int, int]] = {}  # label -> the (timeline, start) it was taken from
    starts: dict[tuple[int, int], str] = {}
    for directory, files in by_directory.items():
        manifest = next((o for o in files if posixpath.basename(o.key) == MANIFEST), None)
        if manifest is None:
            continue
        label = directory or manifest.key
        try:
            facts = manifest_facts(read_bounded(store, manifest.key))
        except BadEntry as exc:
            out.append(unreadable(label, manifest, f"{manifest.key}: {exc}"))
            continue
        starts[(facts.timeline, facts.start_lsn)] = label
        if facts.incremental:
            wanted[label] = _incremental_from(store, files) or (0, 0)
        # -Fp: the cluster's own files where -Ft puts base.tar (PG_VERSION among them).
        plain = any(posixpath.basename(o.key) == "PG_VERSION" for o in files) and not any(
            tar_name(posixpath.basename(o.key), "base") for o in files
        )
        inside = [o for o in objects if o.key.startswith(f"{directory}/")] if plain else files
        out.append(
            BaseBackup(
                label=label,
                kind="incremental" if facts.incremental else "full",
                started=min(o.modified for o in files),
                stopped=manifest.modified,
                size=sum(o.size for o in inside),  # a -Fp backup: every file under it
                wal_start=segment_of(facts.start_lsn, facts.timeline, segment_size),
                error=PLAIN_FORMAT if plain else None,
                manifest_version=facts.version,
            )
        )
    return [_with_parent(b, wanted, starts) if b.label in wanted else b for b in out]


def _with_parent(
    backup: BaseBackup, wanted: dict[str, tuple[int, int]], starts: dict[tuple[int, int], str]
) -> BaseBackup:
    timeline, start = wanted[backup.label]
    if (timeline, start) == (0, 0):
        return dataclasses.replace(
            backup, error="incremental, but its backup_label does not say what it was taken from"
        )
    parent = starts.get((timeline, start))
    if parent is None:
        where = f"{start >> 32:X}/{start & 0xFFFFFFFF:X} on timeline {timeline}"
        return dataclasses.replace(
            backup,
            error=f"incremental from the backup that started at {where}, which is not in the "
            "store: pg_combinebackup cannot restore it",
        )
    return dataclasses.replace(backup, parent=parent)


def _incremental_from(store: Store, files: list[StoredObject]) -> tuple[int, int] | None:
    """What backup_label says (a plain backup's file, else the first members of base.tar)."""
    label = next((o for o in files if posixpath.basename(o.key) == "backup_label"), None)
    if label is not None:
        return incremental_from(read_bounded(store, label.key).decode("utf-8", "replace"))
    base = next((o for o in files if tar_name(posixpath.basename(o.key), "base")), None)
    if base is None:
        return None
    text = read_member(base.key, store.chunks(base.key), "backup_label", MAX_LABEL_SEARCH)
    return incremental_from(text.decode("utf-8", "replace")) if text is not None else None


def _running(objects: list[StoredObject], listed: set[str]) -> list[BaseBackup]:
    """Directories with tar files and no backup_manifest (written last)."""
    directories: dict[str, list[StoredObject]] = {}
    for obj in objects:
        directories.setdefault(posixpath.dirname(obj.key), []).append(obj)
    return [
        running_since(directory, files)
        for directory, files in directories.items()
        if directory not in listed
        and MANIFEST not in (names := {posixpath.basename(o.key) for o in files})
        and any(tar_name(n, "base") for n in names)
    ]


def _catalogue_file(key: str) -> Claim:
    # a first backup still running has no manifest yet: its base tar says it
    name = posixpath.basename(key)
    return "maybe" if name == MANIFEST or tar_name(name, "base") else "no"


def verify(
    store: Store, files: list[StoredObject], deadline: float, cap: Callable[[int], int]
) -> Verdict:
    """The backup's files copied, unpacked and checked with pg_verifybackup: every file against
    the manifest's checksum, and the WAL the backup needs parsed (skipped with -n when the
    backup holds no WAL). A tar that inflates past `cap(its stored size)` fails as a bomb."""
    manifest = next(f for f in files if posixpath.basename(f.key) == MANIFEST)
    with one_at_a_time(deadline):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="drwatch-basebackup-") as private:
            data = Path(private, "data")
            data.mkdir(mode=0o700)
            try:
                bytes_read = _unpack(store, files, data, deadline, cap)
            except BadArchive as exc:
                return Verdict(False, str(exc), None, 0, time.monotonic() - started)
            has_wal = any((data / "pg_wal").glob("0*"))
            code, output = run_checker(verify_command(data, has_wal), manifest.key, deadline)
        duration = time.monotonic() - started
    if code == 0:
        how = "pg_verifybackup ok" if has_wal else (
            "pg_verifybackup ok (files; the backup holds no WAL: the archive's is needed)"
        )  # fmt: skip
        return Verdict(True, how, None, bytes_read, duration)
    problem = output.first_line().removeprefix("pg_verifybackup: ").removeprefix("error: ")
    return Verdict(False, f"pg_verifybackup: {problem}", None, bytes_read, duration)


def _unpack(
    store: Store, files: list[StoredObject], data: Path, deadline: float, cap: Callable[[int], int]
) -> int:
    bytes_read = 0
    tablespaces: dict[str, Path] = {}
    for obj in files:
        name = posixpath.basename(obj.key)
        if name == MANIFEST:
            with open(data / name, "wb") as sink:
                bytes_read += copy_object(store, obj.key, sink, deadline)
            continue
        if (placed := destination(name, data, data.parent / "tablespaces")) is None:
            continue
        into, oid = placed
        if oid is not None:
            tablespaces[oid] = into
        into.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data.parent) as copy:
            bytes_read += copy_object(store, obj.key, copy, deadline)
            copy.seek(0)
            try:
                unpack(copy, name, into, cap(obj.size))
            except (*UNREADABLE, UnsafeMember, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise NoSpace(obj.key, tempfile.gettempdir()) from None
                raise BadArchive(obj.key, exc) from None
    try:
        link_tablespaces(data, tablespaces)
    except UnsafeMember as exc:
        raise BadArchive(files[0].key, exc) from None
    return bytes_read


class BadArchive(Exception):
    """A tar file of the backup cannot be read: a verdict (failed), not an incomplete run."""

    def __init__(self, key: str, exc: BaseException) -> None:
        if isinstance(exc, UnsafeMember):
            super().__init__(f"{key}: refused, {exc}")
        else:
            super().__init__(f"{key}: not a readable tar file ({type(exc).__name__}: {exc})")


TOOL = BackupTool(
    name="pg_basebackup",
    title="pg_basebackup",
    layout="pg_basebackup",
    catalogue_file=_catalogue_file,
    catalogue=_catalogue,
    running=_running,
)
