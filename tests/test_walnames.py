"""WAL file names: timeline, segment number and what an archive holding them covers."""

from __future__ import annotations

import pytest

from checks.support.walnames import archived_end_lsn, parse_wal_name

SEG = 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "segment_size", "kind", "segno", "end"),
    [
        ("000000010000000000000003", SEG, "segment", 3, 4 * SEG),
        ("000000010000000100000002", SEG, "segment", 256 + 2, 259 * SEG),
        # 64 MB segments: 64 per 4 GB "log file"
        ("000000010000000100000002", 64 * 1024 * 1024, "segment", 64 + 2, 67 * 64 * 1024 * 1024),
        ("000000020000000000000005.partial", SEG, "partial", 5, 5 * SEG),
        ("000000010000000000000007.00000028.backup", SEG, "backup", 7, 8 * SEG),
        ("00000002.history", SEG, "history", None, None),
    ],
)
def test_wal_names(
    name: str, segment_size: int, kind: str, segno: int | None, end: int | None
) -> None:
    wal = parse_wal_name(name, segment_size)
    assert wal is not None and wal.kind == kind and wal.segno == segno
    assert archived_end_lsn(name, segment_size) == end


def test_not_a_wal_name() -> None:
    assert parse_wal_name("backup_label", SEG) is None
    assert parse_wal_name("00000001000000000000000G", SEG) is None
