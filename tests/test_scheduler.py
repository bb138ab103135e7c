"""The first round of a fleet's checks is spread; a small config starts at once."""

from __future__ import annotations

from datetime import UTC, datetime

from checks.base import Observation, Status
from exporter.runtime.runner import Job
from exporter.runtime.scheduler import START_RATE, first_runs

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _jobs(targets: int, checks: int = 6, interval: float = 15.0) -> tuple[Job, ...]:
    return tuple(
        Job(f"db{t}", f"c{c}", interval, 5.0, (), (), lambda: Observation(Status.OK, ""))
        for t in range(targets)
        for c in range(checks)
    )


def _offsets(jobs: tuple[Job, ...]) -> list[float]:
    return sorted((when - NOW).total_seconds() for when in first_runs(jobs, NOW).values())


def test_a_small_config_starts_everything_at_once() -> None:
    assert max(_offsets(_jobs(1))) < 0.1


def test_a_fleet_starts_at_the_start_rate_and_within_one_interval() -> None:
    offsets = _offsets(_jobs(200))  # 1,200 checks every 15 s
    assert len(offsets) == 1200 and max(offsets) < 15
    for second in range(15):
        assert sum(second <= o < second + 1 for o in offsets) <= START_RATE
    crowded = _offsets(_jobs(500, interval=5.0))  # more than the rate allows: the interval wins
    assert max(crowded) < 5 and len({round(o, 6) for o in crowded}) == len(crowded)


def test_the_order_is_fixed_by_names() -> None:
    jobs = _jobs(20)
    assert first_runs(jobs, NOW) == first_runs(tuple(reversed(jobs)), NOW)
