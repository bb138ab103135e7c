"""The collector: fresh families from the result store on every scrape, described from the
declarations, and never broken by a check's bug."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from checks.base import Observation, Status
from core.metrics import gauge
from exporter.runtime.current import Current, ReloadState
from exporter.runtime.results import ResultStore
from exporter.runtime.runner import DeadlineRunner, Job
from exporter.web.metrics import SELF_METRICS, DrwatchCollector
from tests.helpers import make_config

DECLARED = gauge("drwatch_test_declared", "Declared by the job.", "item")
UNDECLARED = gauge("drwatch_test_undeclared", "Not declared by the job.")


def _scrape(*collects: object) -> tuple[DrwatchCollector, ResultStore, tuple[Job, ...]]:
    config = make_config([{"name": "db", "postgres": {"dsn": "postgresql://127.0.0.1:1/x"}}])
    jobs = tuple(
        Job("db", f"c{i}", 1.0, 1.0, (DECLARED,), (), collect)  # type: ignore[arg-type]
        for i, collect in enumerate(collects)
    )
    store = ResultStore()
    store.configure(job.key for job in jobs)
    current = Current(config.config, jobs, (("db", "postgres", True),))
    collector = DrwatchCollector(store, lambda: current, lambda: ReloadState(True, 0.0))
    return collector, store, jobs


def test_describe_lists_every_declared_family_before_any_result() -> None:
    collector, _, _ = _scrape(lambda: Observation(Status.OK, ""))
    described = {family.name for family in collector.describe()}
    assert described == {"drwatch_test_declared"} | {
        s.name.removesuffix("_total") for s in SELF_METRICS
    }
    registry = CollectorRegistry()
    registry.register(collector)  # describe() is what the registry checks names against
    assert b"drwatch_check_interval_seconds" in generate_latest(registry)


def test_an_undeclared_metric_costs_its_check_run_never_the_scrape() -> None:
    def buggy() -> Observation:
        obs = Observation(Status.OK, "")
        obs.add(UNDECLARED, 1)
        return obs

    def fine() -> Observation:
        obs = Observation(Status.OK, "")
        obs.add(DECLARED, 7, item="x")
        return obs

    collector, store, jobs = _scrape(buggy, fine)
    runner = DeadlineRunner()
    for job in jobs:
        store.put(runner.run(job))
    bad = store.snapshot().results[("db", "c0")]
    assert not bad.up and bad.error_reasons == ("internal",)
    assert "drwatch_test_undeclared" in bad.summary
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'drwatch_test_declared{item="x",target="db"} 7.0' in text
    assert "drwatch_test_undeclared" not in text
    assert 'drwatch_check_up{check="c0",target="db"} 0.0' in text
    assert 'drwatch_check_up{check="c1",target="db"} 1.0' in text
