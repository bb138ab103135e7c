"""WAL archiving and PITR exposure against real clusters with copying, failing and hanging
archive_command."""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from pathlib import Path

from checks.base import Status
from sandbox.pgcluster import ARCHIVE_FAIL, ARCHIVE_HANG, PgCluster, wait_until
from tests.helpers import CheckHarness, drwatch, make_config, sample, write_config

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
    pitr = [
        {k: v for k, v in e.items() if k != "compliance_30d"}  # the daemon's record, if any
        for e in doc["exposures"] if e["scenario"] == "pitr"
    ]  # fmt: skip
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
    since = re.search(r"archiving failing since (\S+) ", result.summary)
    assert since, result.summary
    # The archiver retries: its last failure moves on, the start of the episode does not.
    first_failure = cluster.execute("SELECT last_failed_time FROM pg_stat_archiver")[0][0]
    wait_until(
        lambda: (
            cluster.execute("SELECT last_failed_time FROM pg_stat_archiver")[0][0] > first_failure
        ),
        90,
        what="another failed attempt",
    )
    later = harness.run("wal_archiving")
    assert f"archiving failing since {since.group(1)} " in later.summary, later.summary

    config = write_config(tmp_path / "c.yml", [_target(cluster)])
    proc = _drwatch_check(config)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "CRITICAL"
    (pitr,) = [e for e in doc["exposures"] if e["scenario"] == "pitr"]
    assert pitr["exposure_seconds"] > 2.0  # a one-shot run has the .ready files' age to go on
    (archiving,) = [r for r in doc["results"] if r["check"] == "wal_archiving"]
    assert "archiving failing since before " in archiving["summary"]
    assert "drwatch started during the failure" in archiving["summary"]


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
