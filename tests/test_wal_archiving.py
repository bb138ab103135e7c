"""WAL archiving and PITR exposure against real clusters with copying, failing and hanging
archive_command."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path

import pytest

from checks.base import Status
from checks.support.archiver import UnarchivedClock
from checks.support.walnames import archived_end_lsn, parse_wal_name
from sandbox.pgcluster import ARCHIVE_FAIL, ARCHIVE_HANG, PgCluster, wait_until
from tests.conftest import make_config, write_config
from tests.helpers import CheckHarness, drwatch, sample

RPO = "2s"


def _target(cluster: PgCluster) -> dict[str, object]:
    return {"name": "db", "objectives": {"pitr": {"rpo": RPO}}, "postgres": {"dsn": cluster.dsn()}}


def _harness(cluster: PgCluster) -> CheckHarness:
    return CheckHarness(make_config([_target(cluster)]))


def _write(cluster: PgCluster, rows: int = 100, switch: bool = True) -> None:
    """Writes rows; with `switch`, completes the segment as a busy server's traffic would."""
    cluster.execute(
        "CREATE TABLE IF NOT EXISTS writes (id serial, at timestamptz DEFAULT now());"
        f"INSERT INTO writes (at) SELECT now() FROM generate_series(1, {rows})"
    )
    if switch:
        cluster.execute("SELECT pg_switch_wal()")


def _archived(cluster: PgCluster) -> bool:
    # Everything written so far is in the archive: no segment waits and the archiver succeeded.
    ready = cluster.execute(
        "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
    )
    archived = cluster.execute("SELECT last_archived_wal FROM pg_stat_archiver")
    return ready[0][0] == 0 and archived[0][0] is not None


def _catch_up(cluster: PgCluster) -> None:
    _write(cluster)
    wait_until(lambda: _archived(cluster), timeout=30, what="archiver caught up")


def _drwatch_check(config: Path) -> subprocess.CompletedProcess[str]:
    return drwatch("check", "--config", str(config), "--format", "json")


def test_idle_healthy_archiver_exposure_stays_zero_past_the_objective(
    cluster: PgCluster, tmp_path: Path
) -> None:
    _catch_up(cluster)
    harness = _harness(cluster)
    started = time.monotonic()
    seen = []
    # Idle for twice the 2 s objective: the archive is complete, nothing is at risk.
    while time.monotonic() - started < 4.5:
        result = harness.run("wal_archiving")
        assert result.up, result.summary
        seen.append(result.exposures["pitr"])
        assert result.status == Status.OK, result.summary
        assert sample(result, "drwatch_pg_archiver_failing") == 0
        time.sleep(0.5)
    assert seen and all(e == 0 for e in seen)
    assert sample(result, "drwatch_pg_in_recovery") == 0
    assert (sample(result, "drwatch_pg_unarchived_wal_bytes") or 0) <= 512
    assert (
        sample(
            result,
            "drwatch_pg_archiver_archived_total",
        )
        >= 1
    )
    assert sample(result, "drwatch_pg_archive_mode", mode="on") == 1

    config = write_config(tmp_path / "c.yml", [_target(cluster)])
    proc = _drwatch_check(config)
    doc = json.loads(proc.stdout)
    wal = next(r for r in doc["results"] if r["check"] == "wal_archiving")
    assert wal["status"] == "OK", wal
    pitr = [e for e in doc["exposures"] if e["scenario"] == "pitr"]
    assert pitr == [
        {"target": "db", "scenario": "pitr", "exposure_seconds": 0.0, "objective_seconds": 2.0}
    ]


def test_failing_archiver_with_writes_pages_and_exits_critical(
    cluster: PgCluster, tmp_path: Path
) -> None:
    _catch_up(cluster)
    harness = _harness(cluster)
    assert harness.run("wal_archiving").exposures["pitr"] == 0
    cluster.set(archive_command=ARCHIVE_FAIL)
    _write(cluster)

    def exposure_past_objective() -> object:
        _write(cluster, 10)
        result = harness.run("wal_archiving")
        exposure = result.exposures["pitr"]
        return result if exposure is not None and exposure > 2.0 else None

    result = wait_until(exposure_past_objective, timeout=30, interval=0.5, what="exposure > RPO")
    assert result.status == Status.CRITICAL
    assert sample(result, "drwatch_pg_archiver_failing") == 1
    assert sample(result, "drwatch_pg_archiver_failed_total") >= 1
    assert sample(result, "drwatch_pg_unarchived_wal_bytes") > 0
    assert "failing" in result.summary

    config = write_config(tmp_path / "c.yml", [_target(cluster)])
    proc = _drwatch_check(config)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "CRITICAL"
    (pitr,) = [e for e in doc["exposures"] if e["scenario"] == "pitr"]
    assert pitr["exposure_seconds"] > 2.0  # a one-shot run has the .ready files' age to go on


def test_hanging_archiver_exposure_grows_while_failed_count_stays_zero(cluster: PgCluster) -> None:
    _catch_up(cluster)
    harness = _harness(cluster)
    cluster.set(archive_command=ARCHIVE_HANG)
    _write(cluster)
    exposures = []

    def exposure_past_objective() -> object:
        _write(cluster, 10)
        result = harness.run("wal_archiving")
        exposures.append(result.exposures["pitr"])
        return result if (result.exposures["pitr"] or 0) > 2.0 else None

    result = wait_until(exposure_past_objective, timeout=30, interval=0.5, what="exposure > RPO")
    assert result.status == Status.CRITICAL
    assert sample(result, "drwatch_pg_archiver_failed_total") == 0
    assert sample(result, "drwatch_pg_archiver_failing") == 0
    assert exposures == sorted(exposures), "exposure only grows while the archiver hangs"


def test_standby_reports_its_role_and_is_not_judged_as_primary(cluster: PgCluster) -> None:
    standby = cluster.create_standby().start()
    try:
        harness = CheckHarness(
            make_config(
                [
                    {
                        "name": "replica",
                        "objectives": {"pitr": {"rpo": "1s"}},
                        "postgres": {"dsn": standby.dsn()},
                    }
                ]
            )
        )
        wait_until(
            lambda: standby.execute("SELECT pg_is_in_recovery()")[0][0], 30, what="standby up"
        )
        result = harness.run("wal_archiving")
        assert result.up, result.summary
        assert result.status == Status.OK
        assert result.values["role"] == "standby"
        assert sample(result, "drwatch_pg_in_recovery") == 1
        assert "pitr" not in result.exposures  # no exposure judged from a standby
        assert sample(result, "drwatch_pg_unarchived_wal_bytes") is None

        replication = harness.run("replication")
        assert replication.values["role"] == "standby"
        assert sample(replication, "drwatch_pg_wal_receiver_streaming") == 1
        primary = CheckHarness(make_config([{"name": "p", "postgres": {"dsn": cluster.dsn()}}]))
        seen = primary.run("replication")
        assert sample(seen, "drwatch_pg_replication_standbys", sync_state="async") == 1
        assert "primary_failover" not in replication.exposures  # the standby is not judged
        # Asynchronous: a failover loses what the standby has not flushed (RPO 0: critical).
        assert 0 <= seen.exposures["primary_failover"] < 5
        cluster.set(synchronous_standby_names="*")
        wait_until(
            lambda: cluster.execute("SELECT sync_state FROM pg_stat_replication")[0][0] == "sync",
            30,
            what="synchronous standby",
        )
        synchronous = primary.run("replication")
        assert synchronous.exposures["primary_failover"] == 0
        assert synchronous.status == Status.OK, synchronous.summary
        cluster.set(synchronous_standby_names="")
        standby.stop("immediate")
        wait_until(
            lambda: primary.run("replication").exposures["primary_failover"] == float("inf"),
            30,
            what="no standby left",
        )
        assert primary.run("replication").status == Status.CRITICAL
    finally:
        standby.destroy()


def test_archive_mode_off_is_critical_with_infinite_exposure() -> None:
    c = PgCluster().init(None).start()
    try:
        result = _harness(c).run("wal_archiving")
        assert result.status == Status.CRITICAL
        assert result.exposures["pitr"] == math.inf
        assert sample(result, "drwatch_pg_archive_mode", mode="off") == 1
    finally:
        c.destroy()


# --- the exposure clock and WAL names, without a server ------------------------------------------

SEG = 16 * 1024 * 1024


def test_clock_dates_exposure_from_the_first_unarchived_sample() -> None:
    clock = UnarchivedClock(tolerance_bytes=512)
    assert clock.observe(100.0, 10 * SEG + 100, 10 * SEG) is None  # within tolerance: idle
    assert clock.observe(110.0, 10 * SEG + 5000, 10 * SEG) == 110.0
    assert clock.observe(120.0, 10 * SEG + 9000, 10 * SEG) == 110.0  # still the oldest at risk
    # The segment holding the first write got archived; the second write is the oldest at risk.
    assert clock.observe(130.0, 11 * SEG + 100, 10 * SEG + 6000) == 120.0
    assert clock.observe(140.0, 11 * SEG + 100, 11 * SEG) is None


def test_clock_history_is_bounded_and_keeps_the_oldest_sample() -> None:
    clock = UnarchivedClock(tolerance_bytes=0)
    for i in range(20_000):
        clock.observe(float(i), SEG + i + 1, SEG)
    assert len(clock.samples) <= 10_000
    assert clock.samples[0] == (0.0, SEG + 1)


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
