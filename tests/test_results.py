"""The result store: latest results, error counts, and refusal of results of removed checks."""

from __future__ import annotations

from checks.base import Observation
from core.errors import CheckError
from exporter.runtime.results import ResultStore
from exporter.runtime.runner import DeadlineRunner, Job


def _job(collect, timeout: float = 0.3) -> Job:  # type: ignore[no-untyped-def]
    return Job("t", "c", interval=1.0, timeout=timeout, metrics=(), scenarios=(), collect=collect)


def test_store_counts_errors_and_refuses_results_of_removed_checks() -> None:
    store = ResultStore()
    store.configure([("t", "c")])
    runner = DeadlineRunner()

    def fails() -> Observation:
        raise CheckError("connect", "cannot connect")

    store.put(runner.run(_job(fails)))
    store.put(runner.run(_job(fails)))
    snap = store.snapshot()
    assert snap.errors[("t", "c", "connect")] == 2
    assert snap.errors[("t", "c", "timeout")] == 0
    assert ("t", "c") not in snap.last_success
    assert store.complete()
    store.configure([("t", "other")])
    store.put(runner.run(_job(fails)))
    assert store.snapshot().results == {}
    assert not store.complete()
