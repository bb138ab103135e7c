"""drwatch's own metrics page: fresh on every scrape, rendered a job at a time, the same text
prometheus_client would write, and never broken by a check's bug."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from checks.base import Observation, Status
from core.metrics import Families, counter, gauge
from exporter.runtime.current import Current, ReloadState
from exporter.runtime.results import ResultStore
from exporter.runtime.runner import DeadlineRunner, Job
from exporter.web.exposition import Lines, page
from exporter.web.metrics import SELF_METRICS, MetricsPage
from tests.helpers import make_config

DECLARED = gauge("drwatch_test_declared", "Declared by the job.", "item")
UNDECLARED = gauge("drwatch_test_undeclared", "Not declared by the job.")


def _page(*collects: object) -> tuple[MetricsPage, ResultStore, tuple[Job, ...]]:
    config = make_config([{"name": "db", "postgres": {"dsn": "postgresql://127.0.0.1:1/x"}}])
    jobs = tuple(
        Job("db", f"c{i}", 1.0, 1.0, (DECLARED,), (), collect)  # type: ignore[arg-type]
        for i, collect in enumerate(collects)
    )
    store = ResultStore()
    store.configure(job.key for job in jobs)
    current = Current(config.config, jobs, (("db", "postgres", True),))
    return MetricsPage(store, lambda: current, lambda: ReloadState(True, 0.0)), store, jobs


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_own_family_is_there_before_any_result() -> None:
    metrics, _, _ = _page(lambda: Observation(Status.OK, ""))
    text = metrics.render()
    for spec in SELF_METRICS:
        assert f"# TYPE {spec.name} {spec.type}\n" in text
    assert 'drwatch_check_interval_seconds{check="c0",target="db"} 1.0' in text
    assert "drwatch_test_declared" not in text  # nothing measured it yet: absent


def test_an_undeclared_metric_costs_its_check_run_never_the_scrape() -> None:
    def buggy() -> Observation:
        obs = Observation(Status.OK, "")
        obs.add(UNDECLARED, 1)
        return obs

    def fine() -> Observation:
        obs = Observation(Status.OK, "")
        obs.add(DECLARED, 7, item="x")
        return obs

    metrics, store, jobs = _page(buggy, fine)
    runner = DeadlineRunner()
    for job in jobs:
        store.put(runner.run(job))
    bad = store.snapshot().results[("db", "c0")]
    assert not bad.up and bad.error_reasons == ("internal",)
    assert "drwatch_test_undeclared" in bad.summary
    text = metrics.render()
    assert 'drwatch_test_declared{item="x",target="db"} 7.0' in text
    assert "drwatch_test_undeclared" not in text
    assert 'drwatch_check_up{check="c0",target="db"} 0.0' in text
    assert 'drwatch_check_up{check="c1",target="db"} 1.0' in text
    assert 'drwatch_check_errors_total{check="c0",reason="internal",target="db"} 1.0' in text


def test_a_new_result_replaces_the_prerendered_lines() -> None:
    value = [1.0]

    def measure() -> Observation:
        obs = Observation(Status.OK, "")
        obs.add(DECLARED, value[0], item="x")
        return obs

    metrics, store, (job,) = _page(measure)
    runner = DeadlineRunner()
    store.put(runner.run(job))
    metrics.prerender(job)
    assert 'drwatch_test_declared{item="x",target="db"} 1.0' in metrics.render()
    value[0] = 2.0
    store.put(runner.run(job))  # no prerender: the scrape sees the stale cache and renders
    text = metrics.render()
    assert 'drwatch_test_declared{item="x",target="db"} 2.0' in text
    assert text.count("drwatch_test_declared{") == 1


def test_a_value_from_older_data_says_when_it_was_read_apart_from_the_run() -> None:
    """drwatch_check_data_timestamp_seconds: where a check's data is older than its run (a
    standby's last reply), besides when drwatch last looked; absent where it is the run's own."""

    def dated() -> Observation:
        obs = Observation(Status.OK, "")
        obs.data_timestamp = 1_700_000_000.0
        return obs

    metrics, store, jobs = _page(dated, lambda: Observation(Status.OK, ""))
    runner = DeadlineRunner()
    for job in jobs:
        store.put(runner.run(job))
    samples = _samples(metrics.render())
    key = (("check", "c0"), ("target", "db"))
    assert samples[("drwatch_check_data_timestamp_seconds", key)] == 1_700_000_000.0
    assert samples[("drwatch_check_last_success_timestamp_seconds", key)] > 1_700_000_000.0
    fresh = (("check", "c1"), ("target", "db"))
    assert ("drwatch_check_data_timestamp_seconds", fresh) not in samples


def test_lines_rendered_in_a_worker_are_served_as_sent() -> None:
    """A worker sends its result's samples as text: the page serves those lines."""
    metrics, store, (job,) = _page(lambda: Observation(Status.OK, ""))
    sent = DeadlineRunner().run(job)
    lines = {"drwatch_test_declared": 'drwatch_test_declared{item="w",target="db"} 3.0\n'}
    store.put(replace(sent, samples=(), check_lines=lines))
    assert 'drwatch_test_declared{item="w",target="db"} 3.0' in metrics.render()


def test_the_text_is_what_prometheus_client_writes() -> None:
    """Escapes, label order, counters, special values: byte for byte generate_latest's."""
    odd = gauge("drwatch_test_odd", 'Help with a \\ backslash\nand a newline "quoted".', "item")
    total = counter("drwatch_test_events_total", "A counter.", "reason")
    values = [
        (odd, 'quote " backslash \\ newline \n', float("inf")),
        (odd, "tiny", 1e-7),
        (odd, "huge", 12345678901.0),
        (odd, "nan", float("nan")),
        (total, "x", 3.0),
    ]
    lines = Lines()
    families = Families((odd, total), ("target",))
    for spec, label, value in values:
        name = spec.labels[0]
        lines.add(spec, value, (("target", "db"), (name, label)))
        families.add_sample(spec.sample(value, **{name: label}), "db")

    class Reference(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return iter(families)

    registry = CollectorRegistry()
    registry.register(Reference())
    assert page((odd, total), [lines.joined()], False) == generate_latest(registry).decode()


def test_many_jobs_each_rendered_once_and_parsed_whole() -> None:
    def measuring(item: str):  # type: ignore[no-untyped-def]
        def measure() -> Observation:
            obs = Observation(Status.OK, "")
            obs.add(DECLARED, 5, item=item)
            return obs

        return measure

    metrics, store, jobs = _page(*[measuring(f"i{n}") for n in range(20)])
    runner = DeadlineRunner()
    for job in jobs:
        store.put(runner.run(job))
        metrics.prerender(job)
    samples = _samples(metrics.render())
    declared = [k for k in samples if k[0] == "drwatch_test_declared"]
    assert len(declared) == 20 and samples[declared[0]] == 5
    assert len([k for k in samples if k[0] == "drwatch_check_up"]) == 20
