"""The WAL archive and base backup checks on what the real tools write: pgBackRest
(`archive-push` from a real archive_command, full and incremental backups, its `backup.info`)
and barman-cloud (`barman-cloud-wal-archive` and `barman-cloud-backup` into moto's S3 server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.backup_tools.pgbackrest import backups as pgbackrest_backups
from checks.base import Status
from sandbox.pgcluster import PgCluster, wait_until
from tests.backup_tools import BarmanCloud, PgBackRest
from tests.helpers import AWS, CheckHarness, make_config, s3_client, sample


@pytest.fixture(scope="module")
def pgbackrest() -> Iterator[PgBackRest]:
    """A full backup, three segments, an incremental backup, three more segments."""
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    cluster.init(tool.archive_command).start()
    try:
        tool.run("stanza-create")
        tool.run("backup", "--type=full")
        cluster.write_wal(3)
        tool.run("backup", "--type=incr")
        cluster.write_wal(3)
        wait_until(cluster.archive_caught_up, 60, what="pgBackRest archived every segment")
        yield tool
    finally:
        cluster.destroy()


def _harness(cluster: PgCluster, tmp_path: Path, **backups: Any) -> CheckHarness:
    target = {"name": "db", "postgres": {"dsn": cluster.dsn()}, "backups": backups}
    top: dict[str, Any] = {"state_dir": str(tmp_path / "state")}
    if any(str(url).startswith("s3://") for url in backups.values()):
        top["aws"] = {**AWS, "endpoint_url": backups.pop("endpoint")}
    return CheckHarness(make_config([target], **top))


def _segments(archive: Path) -> list[Path]:
    return sorted(p for p in archive.rglob("*") if p.is_file() and len(p.name.split("-")[0]) == 24)


def test_a_pgbackrest_archive_is_read_whole(pgbackrest: PgBackRest, tmp_path: Path) -> None:
    harness = _harness(pgbackrest.cluster, tmp_path, wal_store=f"file://{pgbackrest.archive}/")
    result = harness.run("wal_archive")
    assert result.status == Status.OK, result.summary
    assert "pgbackrest layout, detected" in result.summary
    assert sample(result, "drwatch_wal_archive_missing_segments") == 0
    assert sample(result, "drwatch_wal_archive_base_backups") == 2  # both backups' labels
    assert sample(result, "drwatch_wal_archive_last_archived_present") == 1
    assert sample(result, "drwatch_wal_archive_segments") >= 6


def test_a_segment_removed_from_a_pgbackrest_archive_is_named(
    pgbackrest: PgBackRest, tmp_path: Path
) -> None:
    victim = _segments(pgbackrest.archive)[-2]  # after the newest backup's start
    kept = tmp_path / "kept"
    victim.rename(kept)
    try:
        harness = _harness(
            pgbackrest.cluster,
            tmp_path,
            wal_store=f"file://{pgbackrest.archive}/",
            wal_layout="pgbackrest",
        )
        result = harness.run("wal_archive")
        assert result.status == Status.CRITICAL
        assert f"1 segment missing: {victim.name.split('-')[0]}" in result.summary
        assert "pgbackrest layout" in result.summary and "detected" not in result.summary
    finally:
        kept.rename(victim)


def _info(pgbackrest: PgBackRest) -> Path:
    return pgbackrest.repo / "backup" / "main" / "backup.info"


def test_pgbackrest_backup_sets_and_the_recovery_window(
    pgbackrest: PgBackRest, tmp_path: Path
) -> None:
    sets = pgbackrest_backups(_info(pgbackrest).read_text(), "backup.info")
    full, incr = sets
    harness = _harness(
        pgbackrest.cluster,
        tmp_path,
        base_store=f"file://{pgbackrest.repo}/backup/main/",
        wal_store=f"file://{pgbackrest.archive}/",
        retention="1s",
    )
    result = harness.run("base_backups")
    assert result.status == Status.OK, result.summary
    assert "pgbackrest" in result.summary and incr.label in result.summary
    assert sample(result, "drwatch_base_backups", type="full") == 1
    assert sample(result, "drwatch_base_backups", type="incr") == 1
    assert (
        sample(result, "drwatch_base_backup_newest_timestamp_seconds", type="incr") == incr.stopped
    )
    assert sample(result, "drwatch_base_backups_failed") == 0
    # The whole archive is continuous: PITR reaches back to the full backup.
    assert sample(result, "drwatch_recovery_window_start_timestamp_seconds") == full.stopped
    assert result.exposures["full_restore"] >= 0  # no dump store: these are the full_restore

    harness = _harness(
        pgbackrest.cluster,
        tmp_path,
        base_store=f"file://{pgbackrest.repo}/backup/main/",
        wal_store=f"file://{pgbackrest.archive}/",
    )
    result = harness.run("base_backups")
    # Retention 30 days, backups minutes old, none ever lost: day one is not a WARNING.
    assert result.status == Status.OK, result.summary
    assert "recovery window building up: " in result.summary and " of 30d" in result.summary


def test_a_wal_gap_moves_the_recovery_window_to_the_next_backup(
    pgbackrest: PgBackRest, tmp_path: Path
) -> None:
    full, incr = pgbackrest_backups(_info(pgbackrest).read_text(), "backup.info")
    assert full.wal_start and incr.wal_start
    between = [
        p for p in _segments(pgbackrest.archive)
        if full.wal_start < p.name.split("-")[0] < incr.wal_start
    ]  # fmt: skip
    victim, kept = between[0], tmp_path / "kept"
    victim.rename(kept)
    try:
        harness = _harness(
            pgbackrest.cluster,
            tmp_path,
            base_store=f"file://{pgbackrest.repo}/backup/main/",
            wal_store=f"file://{pgbackrest.archive}/",
        )
        result = harness.run("base_backups")
        assert sample(result, "drwatch_recovery_window_start_timestamp_seconds") == incr.stopped
        # An older backup is there but no longer reaches the archive: short, and not young.
        assert result.status == Status.WARNING
        assert "shorter than the 30d retention: older backups are gone or unusable" in (
            result.summary
        )
    finally:
        kept.rename(victim)


def test_a_backup_pgbackrest_flagged_is_not_a_recovery_point(
    pgbackrest: PgBackRest, tmp_path: Path
) -> None:
    """pgBackRest records page checksum errors as `backup-error` and may still exit 0."""
    flagged = (
        _info(pgbackrest).read_text().replace('"backup-error":false', '"backup-error":true', 1)
    )
    full, incr = pgbackrest_backups(flagged, "backup.info")
    assert full.error == "page checksum errors found" and incr.error is None


@pytest.fixture(scope="module")
def barman(moto_endpoint: str) -> Iterator[BarmanCloud]:
    s3_client(moto_endpoint).create_bucket(Bucket="barman-backups")
    cluster = PgCluster()
    tool = BarmanCloud(cluster, moto_endpoint, "barman-backups")
    cluster.init(tool.archive_command).start()
    try:
        cluster.write_wal(2)
        tool.backup()
        cluster.write_wal(3)
        wait_until(cluster.archive_caught_up, 60, what="barman-cloud archived every segment")
        yield tool
    finally:
        cluster.destroy()


def test_barman_cloud_archive_and_backups(
    barman: BarmanCloud, moto_endpoint: str, tmp_path: Path
) -> None:
    prefix = f"{barman.url}/{barman.server}/"
    harness = _harness(
        barman.cluster,
        tmp_path,
        wal_store=prefix,
        base_store=prefix,
        retention="1s",
        endpoint=moto_endpoint,
    )
    wal = harness.run("wal_archive")
    assert wal.status == Status.OK, wal.summary
    assert "barman layout, detected" in wal.summary
    base = harness.run("base_backups")
    assert base.status == Status.OK, base.summary
    assert sample(base, "drwatch_base_backups", type="full") == 1
    assert sample(base, "drwatch_recovery_window_seconds") > 0

    s3 = s3_client(moto_endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="barman-backups")["Contents"]]
    segments = sorted(k for k in keys if "/wals/" in k and len(k.rsplit("/", 1)[1]) == 27)
    victim = segments[-2]
    body = s3.get_object(Bucket="barman-backups", Key=victim)["Body"].read()
    s3.delete_object(Bucket="barman-backups", Key=victim)
    try:
        wal = harness.run("wal_archive")
        assert wal.status == Status.CRITICAL
        assert victim.rsplit("/", 1)[1].removesuffix(".gz") in wal.summary
        base = harness.run("base_backups")
        assert sample(base, "drwatch_recovery_window_seconds") == 0  # the gap is after it
        assert "point-in-time recovery impossible" in base.summary
        assert base.exposures["pitr"] == float("inf")  # raises the archiver's PITR exposure
    finally:
        s3.put_object(Bucket="barman-backups", Key=victim, Body=body)


def test_a_pgbackrest_set_not_yet_in_backup_info_is_running(
    pgbackrest: PgBackRest, tmp_path: Path
) -> None:
    """pgBackRest saves a set's manifest copy when it starts and lists the set in backup.info
    when it ends: a real repository's catalogue, plus the directory of a set under way."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(pgbackrest.repo / "backup" / "main", repo, symlinks=True)
    label = "20261206-030000F"
    (repo / label / "pg_data").mkdir(parents=True)
    (repo / label / "backup.manifest.copy").write_text("[backup]\n")
    (repo / label / "pg_data" / "PG_VERSION.gz").write_bytes(b"x" * 3000)
    harness = _harness(pgbackrest.cluster, tmp_path, base_store=f"file://{repo}/", retention="1s")
    result = harness.run("base_backups")
    assert sample(result, "drwatch_base_backups_incomplete", state="in_progress") == 1
    assert sample(result, "drwatch_base_backup_running_since_timestamp_seconds") == 1796526000.0
    assert f"{label} running since" in result.summary
    assert sample(result, "drwatch_base_backups", type="full") == 1  # the listed set, unchanged
