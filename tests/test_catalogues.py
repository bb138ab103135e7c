"""Catalogues as current tools write them where Debian has no such version: barman ≥ 3.13.2's
local layout and its statuses, barman-cloud's unfinished backups, barman 3.11+ and PostgreSQL 17
incremental chains, WAL-G V1 sentinels. Each fixture is written field by field from the tool's
own format: barman/infofile.py (`BackupInfo`, its fields and statuses) and barman/server.py
(`meta_directory`: `<server>/meta/<id>-backup.info`, barman 3.13.2) in EnterpriseDB/barman;
PostgreSQL 17's backup manifest format (docs, "Backup Manifest Format": version 2 adds
`System-Identifier`; incremental files are `INCREMENTAL.<name>`) and its backup_label's
`INCREMENTAL FROM LSN`/`TLI` lines (src/bin/pg_combinebackup/backup_label.c); WAL-G's
`BackupSentinelDto` (internal/backup_sentinel_dto.go: V1 has no `Timeline`)."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from checks.base import Status
from checks.support.continuity import segment_name
from tests.helpers import CheckHarness, file_store, make_config, sample

SEG = 16 * 1024 * 1024
T0 = float(int(time.time()) - 7200)


def _stamp(when: float) -> str:
    """barman's timestamps: `2026-12-06 01:00:00.123456+00:00`."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when)) + ".123456+00:00"


def _backup_info(segno: int, began: float, **fields: object) -> bytes:
    """A barman backup.info as BackupInfo writes it (key=value, None for unset)."""
    values: dict[str, object] = {
        "backup_label": "None",
        "begin_offset": 40,
        "begin_time": _stamp(began),
        "begin_wal": segment_name(1, segno, SEG),
        "begin_xlog": f"0/{segno:X}000028",
        "compression": "None",
        "end_time": _stamp(began + 30),
        "end_wal": segment_name(1, segno, SEG),
        "error": "None",
        "mode": "postgres",
        "parent_backup_id": "None",
        "pgdata": "/var/lib/postgresql/15/main",
        "server_name": "pg",
        "size": 31_000_000,
        "status": "DONE",
        "systemid": "7312345678901234567",
        "timeline": 1,
        "version": 150010,
        "xlog_segment_size": SEG,
        **fields,
    }
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items())).encode()


def _wals(segnos: range, compress: bool = False) -> dict[str, tuple[bytes, float]]:
    """barman's wals/<timeline+log>/<name>; the local archive gzips under the plain name."""
    out = {}
    for n in segnos:
        name = segment_name(1, n, SEG)
        data = b"\x10\xd1" + b"\x00" * 64
        out[f"wals/{name[:16]}/{name}"] = (gzip.compress(data) if compress else data, T0 + n)
    return out


def _harness(tmp_path: Path, root: Path, **backups: object) -> CheckHarness:
    target = {
        "name": "db",
        "backups": {
            "base_store": f"file://{root}/",
            "wal_store": f"file://{root}/",
            "retention": "1s",
            "wal_segment_size": SEG,
            **backups,
        },
    }
    # The fixtures are hours old by design: the full_restore objective is not what is tested.
    objectives = {"full_restore": {"rto": "2h", "rpo": "1d"}}
    return CheckHarness(
        make_config([target], state_dir=str(tmp_path / "state"), objectives=objectives)
    )


def test_barman_3_13_local_layout_is_read_as_barman(tmp_path: Path) -> None:
    """meta/<id>-backup.info, base/<id>/data/ with PostgreSQL's backup_manifest, gzip WAL under
    plain names: barman's backups with barman's status, not pg_basebackup directories."""
    manifest = json.dumps({"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
                           "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/3000028",
                                           "End-LSN": "0/3000100"}]}).encode()  # fmt: skip
    files = {
        "meta/20261205T010000-backup.info": (_backup_info(3, T0), T0 + 30),
        "meta/20261205T020000-backup.info": (_backup_info(6, T0 + 3600), T0 + 3630),
        "base/20261205T010000/data/backup_manifest": (manifest, T0 + 30),
        "base/20261205T010000/data/PG_VERSION": (b"15\n", T0),
        "base/20261205T020000/data/backup_manifest": (manifest, T0 + 3630),
        **_wals(range(3, 9), compress=True),
    }
    root = file_store(tmp_path, files)
    harness = _harness(tmp_path, root)
    result = harness.run("base_backups")
    assert result.status == Status.OK, result.summary
    assert "(barman), newest 20261205T020000" in result.summary
    # barman's end_time (with its microseconds), not a file's mtime
    newest = sample(result, "drwatch_base_backup_newest_timestamp_seconds", type="full")
    assert newest == T0 + 3630.123456
    assert sample(result, "drwatch_recovery_window_start_timestamp_seconds") == T0 + 30.123456
    wal = harness.run("wal_archive")
    assert wal.status == Status.OK and "barman layout, detected" in wal.summary, wal.summary


def test_the_older_local_layout_still_reads(tmp_path: Path) -> None:
    files = {
        "base/20261205T010000/backup.info": (_backup_info(3, T0), T0 + 30),
        "base/20261205T010000/data/PG_VERSION": (b"15\n", T0),
        **_wals(range(3, 6), compress=True),
    }
    result = _harness(tmp_path, file_store(tmp_path, files)).run("base_backups")
    assert result.up and sample(result, "drwatch_base_backups_failed") == 0, result.summary
    assert "1 base backup (barman), newest 20261205T010000 (full" in result.summary


def test_an_unfinished_barman_cloud_backup_is_one_failed_set(tmp_path: Path) -> None:
    """barman-cloud writes end_time=None and size=None for a backup that failed before it
    stopped: that set is named as failed, the good ones are still read."""
    files = {
        "pg/base/20261205T010000/backup.info": (_backup_info(3, T0, size="None"), T0 + 30),
        "pg/base/20261205T010000/data.tar.gz": (b"x" * 1000, T0 + 20),
        "pg/base/20261205T020000/backup.info": (
            _backup_info(
                6,
                T0 + 3600,
                status="FAILED",
                end_time="None",
                size="None",
                error="failure uploading data (connection reset)",
            ),
            T0 + 3700,
        ),
        **{f"pg/{k}": v for k, v in _wals(range(3, 9)).items()},
    }
    root = file_store(tmp_path, files)
    harness = _harness(tmp_path, root / "pg")
    result = harness.run("base_backups")
    assert result.up, result.summary
    assert sample(result, "drwatch_base_backups_failed") == 1
    assert "20261205T020000: status FAILED: failure uploading data" in result.summary
    assert (
        "newest 20261205T010000 (full, 1.0 kB)" in result.summary
    )  # size=None: the data files' sum


def test_a_barman_cloud_backup_is_sized_as_the_cluster_it_restores(tmp_path: Path) -> None:
    """barman-cloud writes size=None and (barman 3.11+) cluster_size: the cluster's size, as
    for the other tools, not the compressed tars'."""
    files = {
        "pg/base/20261205T010000/backup.info": (
            _backup_info(3, T0, size="None", cluster_size=42_000_000), T0 + 30
        ),
        "pg/base/20261205T010000/data.tar.gz": (b"x" * 1000, T0 + 20),
        **{f"pg/{k}": v for k, v in _wals(range(3, 5)).items()},
    }
    result = _harness(tmp_path, file_store(tmp_path, files) / "pg").run("base_backups")
    assert "newest 20261205T010000 (full, 42.0 MB)" in result.summary, result.summary
    assert sample(result, "drwatch_base_backup_newest_size_bytes") == 42_000_000


def test_barman_statuses_running_and_waiting_are_neither_failed_nor_recovery_points(
    tmp_path: Path,
) -> None:
    files = {
        "meta/20261205T010000-backup.info": (_backup_info(3, T0), T0 + 30),
        "meta/20261205T020000-backup.info": (
            _backup_info(6, T0 + 3600, status="WAITING_FOR_WALS"),
            T0 + 3630,
        ),
        "meta/20261205T030000-backup.info": (
            _backup_info(8, T0 + 7000, status="STARTED", end_time="None", end_wal="None"),
            T0 + 7000,
        ),
        **_wals(range(3, 9), compress=True),
    }
    result = _harness(tmp_path, file_store(tmp_path, files)).run("base_backups")
    assert sample(result, "drwatch_base_backups_failed") == 0, result.summary
    assert sample(result, "drwatch_base_backups_incomplete", state="waiting_for_wal") == 1
    assert sample(result, "drwatch_base_backups_incomplete", state="in_progress") == 1
    assert "newest 20261205T010000" in result.summary  # the only recovery point
    assert "20261205T020000 copied, waiting for its WAL" in result.summary
    assert "20261205T030000 running" in result.summary


def test_barman_incremental_chains(tmp_path: Path) -> None:
    """barman 3.11+ `parent_backup_id`: type incremental; a missing parent breaks the chain."""
    files = {
        "meta/20261205T010000-backup.info": (_backup_info(3, T0), T0 + 30),
        "meta/20261205T020000-backup.info": (
            _backup_info(6, T0 + 3600, parent_backup_id="20261205T010000"), T0 + 3630),
        "meta/20261205T030000-backup.info": (
            _backup_info(8, T0 + 5000, parent_backup_id="20261204T230000"), T0 + 5030),
        **_wals(range(3, 9), compress=True),
    }  # fmt: skip
    result = _harness(tmp_path, file_store(tmp_path, files)).run("base_backups")
    assert sample(result, "drwatch_base_backups", type="incremental") == 2, result.summary
    assert "newest 20261205T020000 (incremental" in result.summary
    assert "20261205T030000: needs 20261204T230000, which is not in the catalogue" in result.summary
    assert sample(result, "drwatch_base_backups_failed") == 1


def _manifest(start_segno: int, incremental: bool, version: int = 2) -> bytes:
    path = "base/5/INCREMENTAL.16384" if incremental else "base/5/16384"
    return json.dumps({
        "PostgreSQL-Backup-Manifest-Version": version,
        "System-Identifier": 7312345678901234567,
        "Files": [{"Path": path, "Size": 8192, "Last-Modified": "2026-12-05 01:00:00 GMT",
                   "Checksum-Algorithm": "CRC32C", "Checksum": "d1e2f3a4"}],
        "WAL-Ranges": [{"Timeline": 1, "Start-LSN": f"0/{start_segno:X}000028",
                        "End-LSN": f"0/{start_segno:X}000100"}],
        "Manifest-Checksum": "0" * 64,
    }).encode()  # fmt: skip


def _label(start_segno: int, from_segno: int) -> bytes:
    return (
        f"START WAL LOCATION: 0/{start_segno:X}000028 (file {segment_name(1, start_segno, SEG)})\n"
        f"CHECKPOINT LOCATION: 0/{start_segno:X}000060\nBACKUP METHOD: streamed\n"
        "BACKUP FROM: primary\nSTART TIME: 2026-12-05 01:00:00 UTC\nLABEL: pg_basebackup\n"
        f"START TIMELINE: 1\nINCREMENTAL FROM LSN: 0/{from_segno:X}000028\n"
        "INCREMENTAL FROM TLI: 1\n"
    ).encode()


def test_postgresql_17_incremental_backups_need_their_chain(tmp_path: Path) -> None:
    files = {
        "full/backup_manifest": (_manifest(3, False), T0 + 30),
        "full/backup_label": (b"START WAL LOCATION: 0/3000028\n", T0),
        "incr1/backup_manifest": (_manifest(6, True), T0 + 3630),
        "incr1/backup_label": (_label(6, 3), T0 + 3600),
        "incr2/backup_manifest": (_manifest(8, True), T0 + 5030),
        "incr2/backup_label": (_label(8, 7), T0 + 5000),  # from a backup no longer there
        **_wals(range(3, 9)),
    }
    result = _harness(tmp_path, file_store(tmp_path, files), verify="full").run("base_backups")
    assert sample(result, "drwatch_base_backups", type="incremental") == 2, result.summary
    assert "newest incr1 (incremental" in result.summary
    assert "incr2: incremental from the backup that started at 0/7000028 on timeline 1" in (
        result.summary
    )
    # PostgreSQL 15's pg_verifybackup cannot read version 2: said, never a failed backup.
    assert "backup_manifest is version 2 (PostgreSQL 17+)" in result.summary
    assert sample(result, "drwatch_base_backup_newest_verified") is None


def test_a_walg_v1_sentinel_takes_its_timeline_from_the_name(tmp_path: Path) -> None:
    name = f"base_{segment_name(2, 5, SEG)}"
    sentinel = json.dumps({"LSN": 5 * SEG + 0x28, "PgVersion": 150000,
                           "UncompressedSize": 1000}).encode()  # fmt: skip
    files = {
        f"basebackups_005/{name}_backup_stop_sentinel.json": (sentinel, T0 + 30),
        "wal_005/00000002.history.lz4": (b"", T0),
        **{f"wal_005/{segment_name(2, n, SEG)}.lz4": (b"w", T0 + n) for n in range(5, 9)},
    }
    root = file_store(tmp_path, files)
    target = {"name": "db", "backups": {"base_store": f"file://{root}/",
                                        "wal_store": f"file://{root}/", "retention": "1s",
                                        "wal_segment_size": SEG}}  # fmt: skip
    result = CheckHarness(make_config([target], state_dir=str(tmp_path / "s"))).run("base_backups")
    # Timeline 2's history is empty here (no parent): the backup on timeline 2 recovers.
    assert sample(result, "drwatch_recovery_window_seconds") > 0, result.summary
