"""Backups in file:// and s3:// (moto's server) stores: inventory, retention, anomalies, integrity."""

from __future__ import annotations

import gzip
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time

from checks.base import Status
from checks.support.verify import pg_restore_binary
from tests.helpers import AWS, CheckHarness, file_store, make_config, s3_client, sample

DAY = 86400.0


def _toc_passes(data: bytes) -> bool:
    return (
        subprocess.run([pg_restore_binary(), "--list"], input=data, capture_output=True).returncode
        == 0
    )


def _harness(store: str, state_dir: Path, **backups: object) -> CheckHarness:
    return CheckHarness(
        make_config(
            [{"name": "db", "backups": {"store": store, **backups}}],
            aws=AWS,
            state_dir=str(state_dir),
        )
    )


@pytest.mark.parametrize("broken", ["truncated", "flipped"])
def test_file_store_broken_newest_dump_fails_and_does_not_count(
    dumps: dict[str, bytes], tmp_path: Path, broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    now = time.time()
    assert _toc_passes(dumps[broken]), (
        "pg_restore --list accepts it: the runbook's check would pass"
    )
    root = file_store(
        tmp_path,
        {
            "postgres/app-1.dump": (dumps["good"], now - 3 * 3600),
            "postgres/app-2.dump": (dumps[broken], now - 600),
        },
    )
    result = _harness(f"file://{root}/", tmp_path / "state").run("backups")
    assert result.up, result.summary
    assert sample(result, "drwatch_backups") == 2
    assert sample(result, "drwatch_backup_newest_verified") == 0
    assert sample(result, "drwatch_backup_last_verified_timestamp_seconds") == pytest.approx(
        now - 3 * 3600, abs=1
    )
    assert result.exposures["full_restore"] == pytest.approx(3 * 3600, abs=30)
    assert result.status == Status.CRITICAL  # 3 h since the last good backup, objective 1 h
    assert "newest backup postgres/app-2.dump failed verification" in result.summary
    assert sample(result, "drwatch_backup_verifications_total", result="failed") == 1
    assert sample(result, "drwatch_backup_verifications_total", result="ok") == 1
    assert list(scratch.iterdir()) == []  # nothing left in temp space


def test_s3_store_verifies_once_and_remembers_across_restarts(
    dumps: dict[str, bytes], moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = f"backups-{uuid.uuid4().hex[:8]}"
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="postgres/app-1.dump", Body=dumps["good"])
    url = f"s3://{bucket}/postgres/"
    aws = {**AWS, "endpoint_url": moto_endpoint}
    config = make_config(
        [{"name": "db", "backups": {"store": url}}], aws=aws, state_dir=str(tmp_path / "state")
    )
    harness = CheckHarness(config)
    first = harness.run("backups")
    assert first.up, first.summary
    assert sample(first, "drwatch_backup_newest_verified") == 1
    assert sample(first, "drwatch_backup_toc_entries") == 2  # TABLE debates and its TABLE DATA
    assert sample(first, "drwatch_backup_verification_read_bytes") == len(dumps["good"])
    assert first.exposures["full_restore"] < 60
    assert first.status == Status.OK, first.summary
    second = harness.run("backups")
    assert sample(second, "drwatch_backup_verifications_total", result="ok") == 1  # cached
    restarted = CheckHarness(config).run("backups")
    assert (
        sample(restarted, "drwatch_backup_verifications_total", result="ok") == 0
    )  # from the state file
    assert sample(restarted, "drwatch_backup_newest_verified") == 1

    s3.put_object(Bucket=bucket, Key="postgres/app-2.dump", Body=dumps["flipped"])
    third = harness.run("backups")
    assert sample(third, "drwatch_backup_newest_verified") == 0
    assert "could not uncompress data" in third.summary
    assert third.values["last_verified_key"] == "app-1.dump"
    s3.put_object(Bucket=bucket, Key="postgres/app-3.dump", Body=dumps["truncated"])
    fourth = harness.run("backups")
    assert sample(fourth, "drwatch_backup_newest_verified") == 0
    assert "end of file" in fourth.summary
    assert fourth.values["last_verified_key"] == "app-1.dump"


def test_inventory_retention_and_size_anomaly_follow_frozen_time(tmp_path: Path) -> None:
    frozen = 1_800_000_000.0
    # One dump a day for 40 days, about 1 MB each; the newest only 100 kB.
    files = {
        f"app-{day:02d}.dump": (b"x" * (1_000_000 + day), frozen - (40 - day) * DAY)
        for day in range(40)
    }
    files["app-40.dump"] = (b"x" * 100_000, frozen - 3600)
    files["notes.txt"] = (b"not a backup", frozen)
    root = file_store(tmp_path, files)
    harness = _harness(f"file://{root}/", tmp_path / "state", verify="none", retention="30d")
    # Called in this thread: freezegun leaves threads started by `threading` on real time.
    with freeze_time(datetime.fromtimestamp(frozen, tz=UTC)):
        result = harness.job("backups").collect()
    assert sample(result, "drwatch_backups") == 41
    # Written at frozen - 30 d (day 10) through frozen - 1 h: 31 inside a 30-day window.
    assert sample(result, "drwatch_backups_in_retention") == 31
    assert sample(result, "drwatch_backup_oldest_timestamp_seconds") == frozen - 40 * DAY
    assert sample(result, "drwatch_backup_newest_size_bytes") == 100_000
    assert sample(result, "drwatch_backup_recent_median_size_bytes") == 1_000_036
    assert sample(result, "drwatch_backup_size_anomaly") == 1
    assert result.exposures["full_restore"] == 3600  # verify: none -> the newest file's age
    assert result.status == Status.WARNING and "under 50% of the recent median" in result.summary


def test_pagination_sees_every_object(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = f"many-{uuid.uuid4().hex[:8]}"
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(Bucket=bucket, Key=f"postgres/app-{i:05d}.dump", Body=b"x"),
                range(2500),
            )
        )
    harness = CheckHarness(
        make_config(
            [{"name": "db", "backups": {"store": f"s3://{bucket}/postgres", "verify": "none"}}],
            aws={**AWS, "endpoint_url": moto_endpoint},
            state_dir=str(tmp_path),
        )
    )
    result = harness.run("backups")
    assert result.up, result.summary
    assert sample(result, "drwatch_backups") == 2500
    assert result.values["newest_key"] in {f"app-{i:05d}.dump" for i in range(2500)}


def test_empty_store_is_critical(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _harness(f"file://{tmp_path / 'empty'}/", tmp_path / "state").run("backups")
    assert result.status == Status.CRITICAL and "no backup matching *.dump" in result.summary
    assert result.exposures["full_restore"] == float("inf")


def test_a_wal_store_or_replica_inside_the_dump_store_is_not_counted(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    now = time.time()
    root = file_store(
        tmp_path,
        {
            "postgres/a.dump": (dumps["good"], now - 60),
            "replica/a.dump": (dumps["good"], now - 30),
            "wal/000000010000000000000001.dump": (b"not a dump", now),
        },
    )
    result = _harness(
        f"file://{root}/",
        tmp_path / "state",
        wal_store=f"file://{root}/wal/",
        replica_store=f"file://{root}/replica/",
    ).run("backups")
    assert sample(result, "drwatch_backups") == 1
    assert result.values["newest_key"] == "postgres/a.dump", result.summary


def test_replicas_sharing_a_verdict_dir_read_each_backup_once(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "app-1.dump").write_bytes(dumps["good"])
    target = {"name": "db", "backups": {"store": f"file://{tmp_path}/store/"}}
    shared = str(tmp_path / "shared")

    def replica(name: str) -> CheckHarness:
        state = str(tmp_path / name)
        return CheckHarness(make_config([target], state_dir=state, verdict_dir=shared))

    first = replica("a").run("backups")
    assert sample(first, "drwatch_backup_verifications_total", result="ok") == 1
    after_reshard = replica("b").run("backups")  # another replica, its own state_dir
    assert sample(after_reshard, "drwatch_backup_verifications_total", result="ok") == 0
    assert sample(after_reshard, "drwatch_backup_newest_verified") == 1
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").glob("*.json"))


@pytest.fixture(scope="module")
def plain_dump(shared_cluster) -> bytes:  # type: ignore[no-untyped-def]
    """`pg_dump app | gzip`, as a cron job writes it: a real plain SQL dump."""
    shared_cluster.execute("CREATE DATABASE plain")
    shared_cluster.execute(
        "CREATE TABLE t AS SELECT i, md5(i::text) AS v FROM generate_series(1, 20000) i", "plain"
    )
    dumped = subprocess.run(
        [pg_restore_binary().replace("pg_restore", "pg_dump"), "-d", shared_cluster.dsn("plain")],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return gzip.compress(dumped)


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ("good", None),
        ("truncated", "truncated"),
        ("no closing line", "pg_dump's closing line is missing"),
        ("not a dump", "not a pg_dump plain SQL dump"),
    ],
)
def test_plain_sql_dumps_are_read_whole(
    plain_dump: bytes, tmp_path: Path, broken: str, why: str | None
) -> None:
    text = gzip.decompress(plain_dump)
    data = {
        "good": plain_dump,
        "truncated": plain_dump[: len(plain_dump) // 2],
        "no closing line": gzip.compress(
            text[: text.rindex(b"-- PostgreSQL database dump complete")]
        ),
        "not a dump": gzip.compress(b"hello\n"),
    }[broken]
    root = file_store(tmp_path, {"app-1.sql.gz": (data, time.time() - 600)})  # finished a while ago
    result = _harness(f"file://{root}/", tmp_path / "state", patterns=["*.sql.gz"]).run("backups")
    assert result.up, result.summary
    if why is None:
        assert sample(result, "drwatch_backup_newest_verified") == 1, result.summary
        assert result.status == Status.OK
    else:
        assert sample(result, "drwatch_backup_newest_verified") == 0, result.summary
        assert why in result.summary
        assert "table of contents" not in result.summary  # never read as a custom-format dump
