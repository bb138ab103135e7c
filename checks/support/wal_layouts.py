"""Where backup tools put WAL in a store, and the PostgreSQL file name behind each key.

- plain: an `archive_command` that copies: `<prefix>/<name>[.gz|...]`;
- pgbackrest: `archive/<stanza>/<pg-version>-<id>/<timeline+log>/<name>-<sha1>[.gz|.lz4|.zst|
  .bz2]`, `.history` files beside the timeline+log directories, `.backup` files with or without
  the hash; after a stanza upgrade older archive ids stay beside the current one, which is the
  highest id;
- walg: `wal_005/<name>.<lz4|lzma|zst|br>` beside `basebackups_005/`;
- barman (and barman-cloud): `wals/<timeline+log>/<name>[.gz|.bz2|.xz|...]`, `.history` files in
  `wals/` itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from checks.support.stores import StoredObject

Layout = Literal["plain", "pgbackrest", "walg", "barman"]
LAYOUTS: tuple[Layout, ...] = ("plain", "pgbackrest", "walg", "barman")
# What archive tools append to WAL file names when they compress.
COMPRESSION_SUFFIXES = (".gz", ".lz4", ".zst", ".br", ".bz2", ".xz", ".lzma", ".snappy")

_PGBACKREST_HASH = re.compile(r"-[0-9a-f]{40}$")  # the SHA-1 of the segment's content
_PGBACKREST_ARCHIVE_ID = re.compile(r"(?:^|/)(\d+(?:\.\d+)?)-(\d+)/")
_BARMAN_WALS = re.compile(r"(?:^|/)wals/(?:[0-9A-F]{16}/)?[0-9A-F]{8}")
_WALG_WALS = "wal_005/"


_COMPRESSION_EXTENSIONS = frozenset(suffix[1:] for suffix in COMPRESSION_SUFFIXES)


def strip_compression(name: str) -> str:
    dot = name.rfind(".")
    return name[:dot] if dot > 0 and name[dot + 1 :] in _COMPRESSION_EXTENSIONS else name


def archive_file_name(key: str) -> str:
    """The PostgreSQL file name a key holds, whatever the tool added (directories, a hash, a
    compression suffix): `000000010000000000000003`, `00000002.history`, `...0028.backup`.
    Called for every key of an archive: slices, no regex, no tuples."""
    name = strip_compression(key[key.rfind("/") + 1 :])
    # pgBackRest's "-<sha1>": PostgreSQL's own names never hold a "-"
    if len(name) > 41 and name[-41] == "-" and name[-40:].isalnum():
        return name[:-41]
    return name


def compressed(key: str) -> bool:
    return key.endswith(COMPRESSION_SUFFIXES)


def detect(objects: Iterable[StoredObject]) -> Layout:
    """The layout the keys are written in: the first key only one tool writes decides."""
    for obj in objects:
        key = obj.key
        if "-" in key and _PGBACKREST_HASH.search(strip_compression(key)):
            return "pgbackrest"
        if _WALG_WALS in key:
            return "walg"
        if "wals/" in key and _BARMAN_WALS.search(key):
            return "barman"
    return "plain"


def archive_files(objects: list[StoredObject], layout: Layout) -> list[StoredObject]:
    """The keys that are this archive's WAL: pgBackRest's current archive id only (an older
    one is another PostgreSQL version's history), WAL-G's `wal_005/`, barman's `wals/`."""
    if layout == "walg":
        return [o for o in objects if _WALG_WALS in o.key]
    if layout == "barman":
        return [o for o in objects if "wals/" in o.key]
    if layout == "pgbackrest":
        # A few hundred directories for 100,000 keys: the archive id is read once for each.
        directories = {obj.key.rpartition("/")[0] + "/" for obj in objects}
        ids = {d: f"{m[1]}-{m[2]}" for d in directories if (m := _PGBACKREST_ARCHIVE_ID.search(d))}
        if len(set(ids.values())) > 1:
            current = max(ids.values(), key=lambda archive_id: int(archive_id.rpartition("-")[2]))
            return [o for o in objects if ids.get(o.key.rpartition("/")[0] + "/") == current]
    return objects
