"""WAL archives in every layout the tools write, from their documented names: the layout is
detected, each key maps to its PostgreSQL file name, and a removed segment is found and named."""

from __future__ import annotations

import hashlib

import pytest

from checks.backup_tools.registry import archive_files
from checks.backup_tools.registry import detect_wal_layout as detect
from checks.support.continuity import read_continuity, segment_name
from checks.support.stores import StoredObject
from checks.support.walnames import archive_file_name

SEG = 16 * 1024 * 1024


def _no_history(key: str) -> str:
    raise AssertionError(f"{key} read: timeline 1 has no history to follow")


def _sha1(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def _keys(layout: str, segments: range, timeline: int = 1) -> list[str]:
    names = [segment_name(timeline, segno, SEG) for segno in segments]
    backup = f"{names[0]}.00000028.backup"
    if layout == "pgbackrest":
        root = "archive/main/15-2"
        return [
            *(f"{root}/{n[:16]}/{n}-{_sha1(n)}.gz" for n in names),
            f"{root}/{backup[:16]}/{backup}",  # pgBackRest stores .backup files both ways
            f"{root}/{names[1][:16]}/{names[1]}.00000060.backup-{_sha1('b')}",
            f"{root}/00000001.history",
            # An older archive id (before a stanza upgrade) is another version's history.
            "archive/main/13-1/0000000100000000/000000010000000000000001-" + _sha1("x") + ".gz",
        ]
    if layout == "walg":
        return [
            *(f"wal_005/{n}.lz4" for n in names),
            f"wal_005/{backup}.lz4",
            f"basebackups_005/base_{names[0]}_backup_stop_sentinel.json",
        ]
    if layout == "barman":
        return [
            *(f"pg/wals/{n[:16]}/{n}.gz" for n in names),
            f"pg/wals/{backup[:16]}/{backup}.gz",
            "pg/base/20261126T000000/backup.info",
        ]
    return [*(f"{n}.gz" for n in names), f"{backup}.gz"]


def _objects(keys: list[str]) -> list[StoredObject]:
    return [StoredObject(key, 1000, 1_700_000_000.0 + i) for i, key in enumerate(keys)]


@pytest.mark.parametrize("layout", ["plain", "pgbackrest", "walg", "barman"])
def test_each_layout_is_detected_and_read_whole(layout: str) -> None:
    objects = _objects(_keys(layout, range(3, 40)))
    assert detect(objects) == layout
    result = read_continuity(archive_files(objects, layout), SEG, _no_history)
    assert result.missing == 0 and result.segments == 37
    assert result.newest is not None and result.newest.name == segment_name(1, 39, SEG)


@pytest.mark.parametrize("layout", ["plain", "pgbackrest", "walg", "barman"])
def test_a_removed_segment_is_found_and_named_in_each_layout(layout: str) -> None:
    keys = _keys(layout, range(3, 40))
    gone = segment_name(1, 20, SEG)
    objects = _objects([k for k in keys if gone not in k])
    result = read_continuity(archive_files(objects, detect(objects)), SEG, _no_history)
    assert result.missing == 1 and result.gaps == [(20, 20)]
    assert segment_name(1, result.gaps[0][0], SEG) == gone


def test_pgbackrest_names() -> None:
    name = "000000010000000A000000FE"
    assert archive_file_name(f"archive/db/15-1/000000010000000A/{name}-{_sha1(name)}.zst") == name
    partial = f"archive/db/15-1/000000010000000A/{name}.partial-{_sha1(name)}.lz4"
    assert archive_file_name(partial) == f"{name}.partial"
    assert archive_file_name("archive/db/15-1/00000002.history") == "00000002.history"


def test_only_the_current_pgbackrest_archive_id_counts() -> None:
    objects = _objects(_keys("pgbackrest", range(3, 10)))
    kept = archive_files(objects, "pgbackrest")
    assert kept and all("/15-2/" in o.key for o in kept)


def test_a_configured_layout_reads_only_its_own_files() -> None:
    """WAL-G's base backups beside its WAL are not segments; barman's base/ neither."""
    objects = _objects(_keys("walg", range(3, 6)))
    assert all(o.key.startswith("wal_005/") for o in archive_files(objects, "walg"))
