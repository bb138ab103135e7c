"""How checks' exposures combine into one per target and scenario."""

from __future__ import annotations

from checks.base import Observation, Status
from exporter.runtime.exposures import combine
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import Job


def _job(check: str, scenarios: tuple[str, ...]) -> Job:
    return Job("t", check, 1, 1, (), scenarios, lambda: Observation(Status.OK, ""))  # type: ignore[arg-type]


def _result(check: str, exposures: dict[str, float | None], up: bool = True) -> CheckResult:
    return CheckResult("t", check, Status.OK, "", up, 0, 0, exposures=exposures)


def test_a_gap_raises_pitr_and_a_down_check_makes_it_unknown() -> None:
    jobs = [_job("wal_archiving", ("pitr",)), _job("wal_archive", ())]
    fine = {("t", "wal_archiving"): _result("wal_archiving", {"pitr": 10.0})}
    assert combine(jobs, fine) == {("t", "pitr"): 10.0}
    gap = {**fine, ("t", "wal_archive"): _result("wal_archive", {"pitr": 7200.0})}
    assert combine(jobs, gap) == {("t", "pitr"): 7200.0}
    down = {
        ("t", "wal_archiving"): _result("wal_archiving", {"pitr": None}, up=False),
        ("t", "wal_archive"): _result("wal_archive", {"pitr": 7200.0}),
    }
    assert combine(jobs, down) == {("t", "pitr"): None}
    assert combine(jobs, {}) == {("t", "pitr"): None}  # not run yet


def test_two_measuring_checks_take_the_larger() -> None:
    jobs = [_job("wal_archiving", ("pitr",)), _job("rds", ("pitr", "primary_failover"))]
    results = {
        ("t", "wal_archiving"): _result("wal_archiving", {"pitr": 5.0}),
        ("t", "rds"): _result("rds", {"pitr": 240.0, "primary_failover": 0.0}),
    }
    assert combine(jobs, results) == {("t", "pitr"): 240.0, ("t", "primary_failover"): 0.0}


def test_last_measured_is_the_oldest_measuring_check_or_the_start() -> None:
    from exporter.runtime.exposures import last_measured
    from exporter.runtime.results import Snapshot

    jobs = [_job("wal_archiving", ("pitr",)), _job("rds", ("pitr", "primary_failover"))]
    snap = Snapshot(
        {}, {}, {}, {("t", "wal_archiving", "pitr"): 500.0, ("t", "rds", "pitr"): 450.0}, 100.0
    )
    assert last_measured(jobs, snap) == {("t", "pitr"): 450.0, ("t", "primary_failover"): 100.0}


def test_a_scenario_left_out_by_its_check_does_not_apply() -> None:
    jobs = [_job("replication", ("primary_failover",))]
    standby = {("t", "replication"): _result("replication", {})}
    assert combine(jobs, standby) == {}
    down = {("t", "replication"): _result("replication", {"primary_failover": None}, up=False)}
    assert combine(jobs, down) == {("t", "primary_failover"): None}
