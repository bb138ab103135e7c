"""The base backups check: WAL-G sentinels (from WAL-G's documented fields, it is not packaged
here) and real pg_basebackup -Ft backups with their manifests; the recovery window; mistakes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.backup_tools.base import lsn, segment_of
from checks.base import Status
from checks.support.continuity import read_continuity, segment_name
from checks.support.stores import StoredObject
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness, config_problems, file_store, make_config, sample

SEG = 16 * 1024 * 1024
T0 = float(int(time.time()) - 4000)  # the newest backup stops 395 s ago: inside the 1h RPO


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sentinel(start_segno: int, started: float, delta_from: str | None = None) -> bytes:
    fields: dict[str, object] = {
        "LSN": start_segno * SEG + 0x28,
        "FinishLSN": start_segno * SEG + 0x100,
        "Timeline": 1,
        "PgVersion": 150000,
        "UncompressedSize": 23_000_000,
        "CompressedSize": 3_000_000,
        "StartTime": _rfc3339(started),  # Go's time.Time in JSON (V2 sentinels)
        "FinishTime": _rfc3339(started + 5),
        "Version": 2,
    }
    if delta_from:
        fields.update(DeltaFrom=delta_from, DeltaLSN=0, DeltaFullName=delta_from, DeltaCount=1)
    return json.dumps(fields).encode()


def _walg_store(tmp_path: Path, segnos: range) -> Path:
    full = f"base_{segment_name(1, 3, SEG)}"
    delta = f"base_{segment_name(1, 10, SEG)}_D_{segment_name(1, 3, SEG)}"
    files = {
        f"basebackups_005/{full}_backup_stop_sentinel.json": (_sentinel(3, T0), T0 + 5),
        f"basebackups_005/{delta}_backup_stop_sentinel.json": (
            _sentinel(10, T0 + 3600, full),
            T0 + 3605,
        ),
        f"basebackups_005/{full}/tar_partitions/part_1.tar.lz4": (b"x", T0),
        **{f"wal_005/{segment_name(1, n, SEG)}.lz4": (b"w", T0 + n) for n in segnos},
    }
    return file_store(tmp_path / "walg", files)


def _harness(tmp_path: Path, base: Path, wal: Path, **backups: object) -> CheckHarness:
    target = {
        "name": "db",
        "backups": {
            "base_store": f"file://{base}/",
            "wal_store": f"file://{wal}/",
            "retention": "1s",
            **backups,
        },
    }
    return CheckHarness(make_config([target], state_dir=str(tmp_path / "state")))


def test_walg_full_and_delta_backups(tmp_path: Path) -> None:
    store = _walg_store(tmp_path, range(3, 30))
    result = _harness(tmp_path, store, store).run("base_backups")
    assert result.status == Status.OK, result.summary
    assert "walg" in result.summary
    assert sample(result, "drwatch_base_backups", type="full") == 1
    assert sample(result, "drwatch_base_backups", type="delta") == 1
    assert sample(result, "drwatch_base_backup_newest_timestamp_seconds", type="delta") == T0 + 3605
    assert sample(result, "drwatch_recovery_window_start_timestamp_seconds") == T0 + 5


def test_walg_gap_between_the_backups(tmp_path: Path) -> None:
    store = _walg_store(tmp_path, range(3, 30))
    (store / f"wal_005/{segment_name(1, 6, SEG)}.lz4").unlink()
    result = _harness(tmp_path, store, store).run("base_backups")
    assert sample(result, "drwatch_recovery_window_start_timestamp_seconds") == T0 + 3605


def test_pg_basebackup_manifests(cluster: PgCluster, tmp_path: Path) -> None:
    """Real `pg_basebackup -Ft` backups beside a copying archive_command's archive."""
    base = cluster.root / "base"  # where the server's OS user may write
    cluster.tar_base_backup(base / "monday")
    a_day_ago = time.time() - 86400  # as if it were: the window then spans a day
    for file in (base / "monday" / "backup").iterdir():
        os.utime(file, (a_day_ago, a_day_ago))
    cluster.execute("CREATE TABLE t (x int); SELECT pg_switch_wal()")
    cluster.tar_base_backup(base / "tuesday")
    cluster.execute("INSERT INTO t VALUES (1); SELECT pg_switch_wal()")
    wait_until(cluster.archive_caught_up, 30, what="archived")
    result = _harness(tmp_path, base, cluster.archive).run("base_backups")
    assert result.status == Status.OK, result.summary
    assert "pg_basebackup" in result.summary and "tuesday" in result.summary
    assert sample(result, "drwatch_base_backups", type="full") == 2
    manifest = json.loads((base / "monday" / "backup" / "backup_manifest").read_text())
    first = manifest["WAL-Ranges"][0]
    assert segment_of(lsn(first["Start-LSN"]), first["Timeline"], SEG) in {
        p.name for p in cluster.archive.iterdir()
    }
    assert sample(result, "drwatch_recovery_window_start_timestamp_seconds") == a_day_ago
    assert sample(result, "drwatch_recovery_window_seconds") >= 86400


def test_no_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _harness(tmp_path, empty, empty).run("base_backups")
    assert not result.up and "no backup catalogue found in file://" in result.summary


def test_a_broken_sentinel_is_one_failed_backup_named(tmp_path: Path) -> None:
    """One unreadable entry does not hide the good backups beside it."""
    store = _walg_store(tmp_path, range(3, 5))
    bad = sorted((store / "basebackups_005").glob("*sentinel.json"))[-1]
    bad.write_text("{not json")
    result = _harness(tmp_path, store, store).run("base_backups")
    assert result.up, result.summary
    assert bad.name.removesuffix("_backup_stop_sentinel.json") + ": unreadable" in result.summary
    assert sample(result, "drwatch_base_backups_failed") == 1
    assert sample(result, "drwatch_base_backups", type="full") == 1


def test_continuity() -> None:
    def since(segnos: list[int]) -> int | None:
        objects = [StoredObject(segment_name(1, n, SEG), SEG, 0.0) for n in segnos]
        return read_continuity(objects, SEG, lambda key: "").continuous_from

    assert since([]) is None
    assert since([5, 6, 7]) == 5
    assert since([1, 2, 4, 5, 7, 8, 9]) == 7


@pytest.mark.parametrize(
    ("backups", "message"),
    [
        ({"retention": "7d"}, "set at least one of store (dumps), wal_store, base_store"),
        (
            {"replica_store": "s3://copy/", "wal_store": "s3://wal/"},
            "replica_store is the copy of store: set store too",
        ),
        ({"base_store": "s3://b/", "base_layout": "bacula"}, "targets[0].backups.base_layout"),
    ],
)
def test_config_mistakes(backups: dict[str, object], message: str) -> None:
    text = json.dumps({"targets": [{"name": "db", "backups": backups}]})
    assert any(message in problem for problem in config_problems(text)), config_problems(text)


def test_base_backups_alone_are_the_full_restore(tmp_path: Path) -> None:
    store = _walg_store(tmp_path, range(3, 30))
    config = make_config(
        [{"name": "db", "backups": {"base_store": f"file://{store}/"}}],
        state_dir=str(tmp_path / "state"),
    )
    harness = CheckHarness(config)
    assert harness.job("base_backups").scenarios == ("full_restore",)
    assert {job.check for job in harness.jobs} == {"base_backups", "store_safety"}
    with_dumps = make_config(
        [
            {
                "name": "db",
                "backups": {"store": f"file://{tmp_path}/", "base_store": f"file://{store}/"},
            }
        ]
    )
    assert CheckHarness(with_dumps).job("base_backups").scenarios == ()


def test_the_newest_pg_basebackup_is_verified_once_and_corruption_is_named(
    cluster: PgCluster, tmp_path: Path
) -> None:
    base = cluster.root / "base"
    backup = cluster.tar_base_backup(base / "monday")
    harness = _harness(tmp_path, base, cluster.archive)
    result = harness.run("base_backups")
    assert sample(result, "drwatch_base_backup_newest_verified") == 1, result.summary
    assert result.values["newest_verified"] is True
    cached = harness.run("base_backups")  # the verdict is cached: not read again
    assert sample(cached, "drwatch_base_backup_newest_verified") == 1
    assert cached.duration_seconds < result.duration_seconds

    broken = cluster.tar_base_backup(base / "tuesday")
    tar = broken / "base.tar"
    data = bytearray(tar.read_bytes())
    offset = data.index(b"PG_VERSION") + 512  # the content of a file the manifest lists
    data[offset] ^= 0xFF
    tar.write_bytes(bytes(data))
    result = harness.run("base_backups")
    assert sample(result, "drwatch_base_backup_newest_verified") == 0
    assert result.status == Status.WARNING
    assert "tuesday/backup fails verification: pg_verifybackup:" in result.summary, result.summary
    assert "PG_VERSION" in result.summary  # the damaged file, named
    assert backup.exists()


def test_a_backup_without_wal_and_one_with_a_tablespace_are_verified(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """`-X none`: base.tar carries an empty pg_wal/, the WAL is the archive's; checked with -n
    and said so. A second tablespace's `<oid>.tar`: unpacked and linked as PostgreSQL documents,
    as pg_verifybackup itself passes it."""
    base = cluster.root / "base"
    cluster.tar_base_backup(base / "no-wal", wal="none")
    harness = _harness(tmp_path, base, cluster.archive)
    result = harness.run("base_backups")
    assert sample(result, "drwatch_base_backup_newest_verified") == 1, result.summary
    assert "the backup holds no WAL" in result.values["newest_verification"]

    space = cluster.root / "space"
    cluster.make_server_dir(space)
    cluster.execute(f"CREATE TABLESPACE extra LOCATION '{space}'")
    cluster.execute("CREATE TABLE far (x int) TABLESPACE extra; INSERT INTO far VALUES (1)")
    backup = cluster.tar_base_backup(base / "with-space")
    assert any(p.name[0].isdigit() for p in backup.iterdir()), sorted(backup.iterdir())
    result = harness.run("base_backups")
    assert sample(result, "drwatch_base_backup_newest_verified") == 1, result.summary


def test_a_plain_format_backup_is_named_and_sized_whole(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """`pg_basebackup -Fp`: a directory of files, not tars. Named for what it is (no recovery
    point drwatch can prove), never half-read and called corrupt."""
    base = cluster.root / "base"
    (base / "plain").mkdir(parents=True)
    cluster.make_server_dir(base / "plain")
    cluster.run_as_server_user(
        str(cluster.bin / "pg_basebackup"), "-h", str(cluster.socket_dir), "-p", str(cluster.port),
        "-U", "postgres", "-D", str(base / "plain" / "backup"), "-Fp", "-X", "stream",
    )  # fmt: skip
    result = _harness(tmp_path, base, cluster.archive).run("base_backups")
    assert "a plain-format (-Fp) backup: drwatch verifies and restores pg_basebackup -Ft" in (
        result.summary
    ), result.summary
    assert "fails verification" not in result.summary and result.status == Status.CRITICAL
    assert sample(result, "drwatch_base_backups_failed") == 1


@pytest.fixture(scope="module")
def shared_archiving_cluster() -> Iterator[PgCluster]:
    c = PgCluster().init().start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.mark.parametrize(
    "compress", [None, "gzip", "lz4", "zstd", "server-gzip", "server-lz4", "server-zstd"]
)
def test_every_compression_pg_basebackup_writes_is_verified(
    shared_archiving_cluster: PgCluster, tmp_path: Path, compress: str | None
) -> None:
    cluster = shared_archiving_cluster
    base = cluster.root / "base" / (compress or "none")
    backup = cluster.tar_base_backup(base / "b", compress)
    names = {p.name for p in backup.iterdir()}
    suffix = {"gzip": ".gz", "lz4": ".lz4", "zstd": ".zst"}.get((compress or "").split("-")[-1], "")
    assert f"base.tar{suffix}" in names, names
    result = _harness(tmp_path, base, cluster.archive).run("base_backups")
    assert sample(result, "drwatch_base_backup_newest_verified") == 1, result.summary


def test_a_pg_basebackup_midway_is_running_not_old(
    shared_archiving_cluster: PgCluster, tmp_path: Path
) -> None:
    """A real pg_basebackup held to pg_basebackup's lowest --max-rate: its directory has tar
    data and no backup_manifest yet. Reported as running, with what it wrote so far; not a
    failed backup, not the newest one."""
    import subprocess

    cluster = shared_archiving_cluster
    base = cluster.root / "base-running"
    target_dir = base / "tuesday"
    base.mkdir()
    subprocess.run(["chown", "postgres", str(base)], check=True)
    copy = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", str(cluster.bin / "pg_basebackup"), "-D",
         str(target_dir), "-Ft", "-X", "fetch", "-h", "127.0.0.1", "-p", str(cluster.port),
         "-U", "postgres", "-c", "fast", "--max-rate=32k"],
    )  # fmt: skip
    try:
        wait_until(
            lambda: (target_dir / "base.tar").exists()
            and (target_dir / "base.tar").stat().st_size > 0,
            60, interval=0.05, what="copying",
        )  # fmt: skip
        result = _harness(tmp_path, base, cluster.archive).run("base_backups")
        assert sample(result, "drwatch_base_backups_incomplete", state="in_progress") == 1
        assert sample(result, "drwatch_base_backup_running_bytes") > 0
        assert "tuesday running since" in result.summary, result.summary
        assert sample(result, "drwatch_base_backups_failed") == 0
        assert sample(result, "drwatch_base_backups", type="full") is None  # nothing finished
    finally:
        copy.kill()
        copy.wait(30)
        subprocess.run(["pkill", "-f", f"pg_basebackup -D {target_dir}"], check=False)


def test_a_walg_backup_without_its_sentinel_yet_is_running(tmp_path: Path) -> None:
    """WAL-G writes the sentinel last: the tar partitions of a backup under way, no sentinel."""
    store = _walg_store(tmp_path, range(3, 30))
    running = store / "basebackups_005" / f"base_{segment_name(1, 20, SEG)}" / "tar_partitions"
    running.mkdir(parents=True)
    (running / "part_1.tar.lz4").write_bytes(b"x" * 5000)
    result = _harness(tmp_path, store, store).run("base_backups")
    assert sample(result, "drwatch_base_backups_incomplete", state="in_progress") == 1
    assert sample(result, "drwatch_base_backup_running_bytes") == 5000
    assert sample(result, "drwatch_base_backups_failed") == 0
