"""The primary failover RTO measured from the failovers that happen: a real promotion observed
by the cluster check, RDS events, and the RDS failover drill a person asks for."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from prometheus_client import CollectorRegistry, generate_latest

from checks.rds import RdsFailovers, failovers_in
from core.config.drills import DrillCapacity
from exporter.drills.engine import DrillEngine
from exporter.drills.failover import FailoverObserver, failover_history
from exporter.drills.metrics import DrillCollector
from exporter.drills.rds_failover import fail_over
from exporter.drills.scratch import DrillError
from exporter.runtime.results import CheckResult
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import AWS, CheckHarness, make_config, write_config

T0 = dt.datetime(2026, 12, 1, 3, 0, 0, tzinfo=dt.UTC)


def _event(seconds: float, message: str) -> dict[str, object]:
    return {"SourceIdentifier": "prod", "SourceType": "db-instance", "Message": message,
            "EventCategories": ["failover"], "Date": T0 + dt.timedelta(seconds=seconds)}  # fmt: skip


def test_rds_failover_events_pair_start_with_completion() -> None:
    """The messages RDS writes (the RDS User Guide's event table), old and new forms."""
    events = [
        _event(0, "A Multi-AZ failover that resulted in the promotion of a standby instance "
                  "has started."),
        _event(41, "A Multi-AZ failover that resulted in the promotion of a standby instance "
                   "is complete. It may take several minutes for the DNS to transfer to the new "
                   "primary DB instance."),
        _event(42, "A Multi-AZ failover has completed."),  # the same failover, said twice
        _event(500, "Amazon RDS isn't attempting a requested failover because a failover "
                    "recently occurred on the DB instance."),
        _event(900, "Multi-AZ instance failover started."),
        _event(1000, "Multi-AZ instance failover completed."),
    ]  # fmt: skip
    start = T0.timestamp()
    assert failovers_in(events) == ((start, start + 41), (start + 900, start + 1000))


def _result(target: str, check: str, at: float, facts: RdsFailovers) -> CheckResult:
    return CheckResult(target, check, None, "", True, 0.1, at, facts=facts)  # type: ignore[arg-type]


def test_a_real_promotion_is_observed_as_a_failover_bounded_by_the_checks(
    tmp_path: Path,
) -> None:
    """drwatch watches the standby's address (a VIP that moves, say); the old primary stops,
    the standby is promoted: the first good run on timeline 2 ends the failover."""
    primary = PgCluster().init(None).start()
    standby = primary.create_standby().start()
    try:
        harness = CheckHarness(
            make_config([{"name": "db", "postgres": {"dsn": standby.dsn()}}],
                        state_dir=str(tmp_path))
        )  # fmt: skip
        observer = FailoverObserver()
        observer.configure(str(tmp_path), DrillCapacity())
        before = harness.run("cluster")
        assert before.values["timeline"] == 1 and observer.observe(before) is None
        primary.stop()
        standby.promote()
        after: list[CheckResult] = []

        def on_timeline_2() -> bool:
            standby.execute("CHECKPOINT")  # the end-of-recovery checkpoint, sooner
            after.append(harness.run("cluster"))
            return after[-1].values.get("timeline") == 2

        wait_until(on_timeline_2, 60, what="the cluster check to see timeline 2")
        found = [r for r in map(observer.observe, after) if r is not None]
    finally:
        standby.destroy()
        primary.destroy()
    (failover,) = found
    assert failover.source == "observed"
    assert failover.started_at == before.finished_at
    assert failover.completed_at == after[-1].finished_at
    assert "timeline 1 to 2: at most this long" in failover.detail
    again = FailoverObserver()  # kept in state_dir: a restart still knows it
    again.configure(str(tmp_path), DrillCapacity())
    assert again.newest()["db"] == failover


def test_the_newest_failover_is_the_measured_primary_failover_rto(tmp_path: Path) -> None:
    loaded = make_config([{"name": "prod", "rds": {"instance": "prod"}}], state_dir=str(tmp_path))
    observer = FailoverObserver()
    observer.configure(str(tmp_path), DrillCapacity())
    start = T0.timestamp()
    facts = RdsFailovers(((start, start + 41), (start + 900, start + 1000)))
    result = _result("prod", "rds", start + 2000, facts)
    assert observer.observe(result) is not None
    assert observer.observe(result) is None  # the same events, next run: not again
    assert len(failover_history(str(tmp_path), DrillCapacity()).read()) == 2
    registry = CollectorRegistry()
    registry.register(DrillCollector(DrillEngine(), lambda: loaded.config, observer))
    text = generate_latest(registry).decode()
    assert 'drwatch_failover_last_duration_seconds{source="events",target="prod"} 100.0' in text
    assert 'drwatch_rto_measured_seconds{scenario="primary_failover",target="prod"} 100.0' in text


def _rds(endpoint: str = "http://127.0.0.1:1"):  # type: ignore[no-untyped-def]
    return boto3.client("rds", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret")  # fmt: skip


def test_the_failover_drill_reboots_with_force_failover_and_times_rds_events(
    tmp_path: Path,
) -> None:
    """A stubbed RDS (moto has no failover events): the drill asks for the runbook's
    reboot --force-failover, polls, and times the failover from RDS's own events."""
    loaded = make_config([{"name": "prod", "rds": {"instance": "prod", "failover_wait": "10s"}}],
                         aws={**AWS, "endpoint_url": "http://127.0.0.1:1"}, state_dir=str(tmp_path))  # fmt: skip
    client = _rds()
    stub = Stubber(client)
    now = dt.datetime.now(dt.UTC)
    events = {"SourceIdentifier": "prod", "SourceType": "db-instance",
              "EventCategories": ["failover"], "Duration": 20160}  # fmt: skip
    stub.add_response("reboot_db_instance", {"DBInstance": {"DBInstanceIdentifier": "prod"}},
                      {"DBInstanceIdentifier": "prod", "ForceFailover": True})  # fmt: skip
    stub.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceStatus": "rebooting"}]},
                      {"DBInstanceIdentifier": "prod"})  # fmt: skip
    started = {"Message": "Multi-AZ instance failover started.", "Date": now}
    stub.add_response("describe_events", {"Events": [started]}, events)
    stub.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceStatus": "available"}]},
                      {"DBInstanceIdentifier": "prod"})  # fmt: skip
    done = {"Message": "Multi-AZ instance failover completed.",
            "Date": now + dt.timedelta(seconds=35)}  # fmt: skip
    stub.add_response("describe_events", {"Events": [started, done]}, events)
    with stub:
        record = fail_over(loaded.config, loaded.config.targets[0], client)
    stub.assert_no_pending_responses()
    assert record.source == "drill" and record.duration_seconds == pytest.approx(35, abs=0.01)


def test_the_failover_drill_is_rds_only() -> None:
    loaded = make_config([{"name": "self", "postgres": {"dsn": "postgresql://x@127.0.0.1:1/x"}}])
    with pytest.raises(DrillError, match="no rds: section"):
        fail_over(loaded.config, loaded.config.targets[0], _rds())


def _failover_cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "drill", "--config", str(config), "--scenario",
         "failover", *args], input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_failover_drill_asks_for_the_name_typed_back(
    moto_endpoint: str, tmp_path: Path
) -> None:
    instance = f"prod-{uuid.uuid4().hex[:8]}"
    _rds(moto_endpoint).create_db_instance(
        DBInstanceIdentifier=instance, DBInstanceClass="db.r5.large", Engine="postgres",
        AllocatedStorage=10, MultiAZ=True, MasterUsername="postgres",
        MasterUserPassword="not-a-real-password",
    )  # fmt: skip
    config = write_config(
        tmp_path / "c.yml",
        [{"name": "prod", "rds": {"instance": instance, "failover_wait": "1s"}}],
        aws={**AWS, "endpoint_url": moto_endpoint}, state_dir=str(tmp_path / "s"),
    )  # fmt: skip
    typo = _failover_cli(config, "--target", "prod", stdin="prod\n")
    assert typo.returncode == 3
    assert f"not failed over: 'prod' is not '{instance}'" in typo.stderr
    flag = _failover_cli(config, "--target", "prod", "--yes-fail-over", "other")
    assert flag.returncode == 3 and "not failed over" in flag.stderr
    no_target = _failover_cli(config)
    assert no_target.returncode == 3 and "--target" in no_target.stderr
    # Typed back: moto takes the reboot --force-failover; it writes no failover event, so the
    # drill waits its rds.failover_wait and says what to look at.
    started = time.monotonic()
    typed = _failover_cli(config, "--target", "prod", stdin=f"{instance}\n")
    assert typed.returncode == 2, typed.stderr
    assert "did not say it completed within 1 s" in typed.stderr
    assert time.monotonic() - started < 30
