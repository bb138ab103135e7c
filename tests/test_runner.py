"""The deadline drwatch owns: a stuck check is down on time, never piles up threads, recovers."""

from __future__ import annotations

import threading
import time

from checks.base import Observation, Status
from core.errors import CheckError
from exporter.runtime.runner import DeadlineRunner, Job


def _job(collect, timeout: float = 0.3) -> Job:  # type: ignore[no-untyped-def]
    return Job(
        "t", "c", interval=1, timeout=timeout, metrics=(), scenarios=("pitr",), collect=collect
    )


def test_stuck_check_is_down_at_the_deadline_and_not_started_again_until_it_returns() -> None:
    release = threading.Event()
    calls = []

    def collect() -> Observation:
        calls.append(1)
        release.wait(30)
        return Observation(Status.OK, "fine")

    runner = DeadlineRunner()
    job = _job(collect)
    started = time.monotonic()
    first = runner.run(job)
    assert time.monotonic() - started < 5
    assert not first.up and first.summary == "timed out after 0.3 s"
    assert first.status == Status.CRITICAL and first.error_reasons == ("timeout",)
    assert first.exposures == {"pitr": None}  # unmeasured, not a stale number

    second = runner.run(job)
    assert not second.up and "previous run still stuck" in second.summary
    assert len(calls) == 1  # no second thread piled on the stuck one

    release.set()
    for _ in range(100):
        if not any(t.name == "check:t:c" for t in threading.enumerate()):
            break
        time.sleep(0.05)
    third = runner.run(job)
    assert third.up and third.status == Status.OK and third.summary == "fine"


def test_check_errors_and_crashes_are_down_with_their_reason() -> None:
    def refused() -> Observation:
        raise CheckError("permission", "permission denied for function pg_ls_archive_statusdir")

    def crashed() -> Observation:
        raise ZeroDivisionError("boom")

    runner = DeadlineRunner()
    refused_result = runner.run(_job(refused))
    assert refused_result.status == Status.UNKNOWN and refused_result.error_reasons == (
        "permission",
    )
    crashed_result = runner.run(_job(crashed))
    assert crashed_result.error_reasons == ("internal",)
    assert "ZeroDivisionError: boom" in crashed_result.summary


def test_a_check_down_for_the_same_reason_is_said_once(caplog) -> None:  # type: ignore[no-untyped-def]
    """A stopped database: one line when the check goes down, none while it stays down for the
    same reason, one when the reason changes, and again after it came back up."""
    import logging

    errors = ["connection refused", "connection refused", "connection refused", "timed out"]
    outcomes: list[CheckError | None] = [*(CheckError("connect", e) for e in errors), None]
    outcomes.append(CheckError("connect", "connection refused"))

    def collect() -> Observation:
        err = outcomes.pop(0)
        if err is not None:
            raise err
        return Observation(Status.OK, "fine")

    runner = DeadlineRunner()
    with caplog.at_level(logging.WARNING, logger="drwatch.runner"):
        results = [runner.run(_job(collect)) for _ in range(6)]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("check down")]
    assert said == ["check down: connection refused", "check down: timed out",
                    "check down: connection refused"]  # fmt: skip
    assert [r.up for r in results] == [False, False, False, False, True, False]
