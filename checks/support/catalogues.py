"""Physical base backups, from the catalogues the tools keep in their stores (the fields of each
in `checks.support.catalogue_formats`; what is read and refused in docs/what-drwatch-reads.md).

A backup is a recovery point only when its tool says it is complete and everything it needs is
there: a diff, incremental or delta backup needs its whole chain. An entry that cannot be read
is one failed backup, named; the others are still read.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterable
from typing import Literal

from checks.support.catalogue_formats import (
    WALG_SENTINEL,
    BadEntry,
    BaseBackup,
    barman_backup,
    barman_label,
    incremental_from,
    manifest_facts,
    pgbackrest_backups,
    segment_of,
    unreadable,
    walg_backup,
)
from checks.support.pgbackrest_cipher import CipherError, decrypt, encrypted
from checks.support.running import running_backups
from checks.support.stores import Store, StoredObject
from checks.support.tarballs import read_member, tar_name
from core.errors import CheckError

__all__ = ["BaseBackup", "CatalogueLayout", "detect_catalogue", "read_catalogue"]

CatalogueLayout = Literal["pgbackrest", "walg", "barman", "pg_basebackup"]
CATALOGUE_LAYOUTS: tuple[CatalogueLayout, ...] = ("pgbackrest", "walg", "barman", "pg_basebackup")
MAX_CATALOGUE_BYTES = 64 << 20  # a backup_manifest lists every file: megabytes for big clusters
# A pg_basebackup -Fp directory: what drwatch verifies and restores are -Ft backups (tar files a
# store holds as they were written); a plain directory is named, never half-read.
PLAIN_FORMAT = (
    "a plain-format (-Fp) backup: drwatch verifies and restores pg_basebackup -Ft backups "
    "(take them with -Ft, or point base_store at a tool's repository)"
)
MAX_LABEL_SEARCH = 16  # tar members looked at for backup_label (pg_basebackup sends it first)


def detect_catalogue(objects: Iterable[StoredObject]) -> CatalogueLayout | None:
    found: CatalogueLayout | None = None
    for obj in objects:
        name = posixpath.basename(obj.key)
        if name.endswith(WALG_SENTINEL) or obj.key.startswith("basebackups_005/"):
            return "walg"
        if name == "backup.info.copy":
            return "pgbackrest"  # pgBackRest writes every info file twice
        if (name == "backup.info" and "base/" in obj.key) or (
            name.endswith("-backup.info") and "meta/" in obj.key
        ):
            found = "barman"  # barman keeps a backup_manifest in base/<id>/data/ too
        elif (name == "backup_manifest" or tar_name(name, "base")) and found is None:
            found = "pg_basebackup"  # a first backup still running has no manifest yet
    return found


def _read(store: Store, key: str) -> bytes:
    data = bytearray()
    for chunk in store.chunks(key):
        data += chunk
        if len(data) > MAX_CATALOGUE_BYTES:
            raise CheckError("query", f"{key}: larger than {MAX_CATALOGUE_BYTES >> 20} MB")
    return bytes(data)


def read_catalogue(
    store: Store,
    objects: list[StoredObject],
    layout: CatalogueLayout,
    segment_size: int,
    cipher_pass: str | None = None,
) -> list[BaseBackup]:
    """Every base backup the catalogue lists, oldest first, chains checked."""
    if layout == "pgbackrest":
        backups = _pgbackrest(store, objects, cipher_pass)
    elif layout == "walg":
        backups = [
            walg_backup(_read(store, o.key), o, segment_size)
            for o in objects
            if o.key.endswith(WALG_SENTINEL)
        ]
    elif layout == "barman":
        backups = _barman(store, objects)
    else:
        backups = _manifests(store, objects, segment_size)
    backups += running_backups(objects, layout, {b.label for b in backups})
    return chains_checked(sorted(backups, key=lambda b: (b.stopped, b.label)))


def _pgbackrest(
    store: Store, objects: list[StoredObject], cipher_pass: str | None
) -> list[BaseBackup]:
    infos = [o for o in objects if posixpath.basename(o.key) == "backup.info"]
    if len(infos) != 1:
        raise CheckError(
            "config",
            f"{len(infos)} pgBackRest backup.info files: point base_store at one stanza's "
            "backup/<stanza>/ directory",
        )
    key = infos[0].key
    data = _read(store, key)
    if encrypted(data):
        if not cipher_pass:
            raise CheckError(
                "config",
                f"{store.url}{key} is encrypted (the repository has repo-cipher-type set): give "
                "its repo-cipher-pass as backups.pgbackrest_cipher_pass (or _file)",
            )
        try:
            data = decrypt(data, cipher_pass)
            if not data.startswith(b"[backrest]"):  # a wrong key can still unpad (1 in 256)
                raise CipherError("the passphrase does not open it")
        except CipherError as exc:
            raise CheckError("config", f"{key}: backups.pgbackrest_cipher_pass: {exc}") from None
    try:
        return pgbackrest_backups(data.decode("utf-8"), key)
    except (BadEntry, UnicodeDecodeError) as exc:
        raise CheckError("query", f"{key}: {exc}") from None


def _files_size(objects: list[StoredObject], directory: str) -> int:
    """What a backup's directory holds, its own backup.info aside."""
    prefix = directory + "/"
    return sum(
        o.size for o in objects if o.key.startswith(prefix) and not o.key.endswith("backup.info")
    )


def _barman(store: Store, objects: list[StoredObject]) -> list[BaseBackup]:
    out = []
    for info in objects:
        name = posixpath.basename(info.key)
        if name != "backup.info" and not (name.endswith("-backup.info") and "meta/" in info.key):
            continue
        label = barman_label(info)
        server = info.key.rpartition("meta/" if "meta/" in info.key else "base/")[0]
        files_size = _files_size(objects, f"{server}base/{label}")
        try:
            text = _read(store, info.key).decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append(unreadable(label, info, f"{info.key}: {exc}"))
            continue
        out.append(barman_backup(text, info, files_size))
    return out


def _manifests(store: Store, objects: list[StoredObject], segment_size: int) -> list[BaseBackup]:
    """pg_basebackup directories; a PostgreSQL 17 incremental one needs the backup whose start
    its backup_label names (`pg_combinebackup` restores the chain, never one alone)."""
    by_directory: dict[str, list[StoredObject]] = {}
    for obj in objects:
        by_directory.setdefault(posixpath.dirname(obj.key), []).append(obj)
    out: list[BaseBackup] = []
    wanted: dict[str, tuple[int, int]] = {}  # label -> the (timeline, start) it was taken from
    starts: dict[tuple[int, int], str] = {}
    for directory, files in by_directory.items():
        manifest = next((o for o in files if posixpath.basename(o.key) == "backup_manifest"), None)
        if manifest is None:
            continue
        label = directory or manifest.key
        try:
            facts = manifest_facts(_read(store, manifest.key))
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
        return incremental_from(_read(store, label.key).decode("utf-8", "replace"))
    base = next((o for o in files if tar_name(posixpath.basename(o.key), "base")), None)
    if base is None:
        return None
    text = read_member(base.key, store.chunks(base.key), "backup_label", MAX_LABEL_SEARCH)
    return incremental_from(text.decode("utf-8", "replace")) if text is not None else None


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
