"""Builds fresh metric families from the ResultStore on every scrape; never touches a database."""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from checks.base import MetricSpec
from exporter import __version__
from exporter.runtime.current import Current, ReloadState
from exporter.runtime.exposures import combine, last_measured
from exporter.runtime.results import CheckResult, JobKey, ResultStore, Snapshot
from exporter.runtime.runner import Job

JOB_LABELS = ("target", "check")

SELF_METRICS = (
    MetricSpec(
        "drwatch_check_up", "gauge", "1 if the check's last run measured everything.", JOB_LABELS
    ),
    MetricSpec(
        "drwatch_check_status",
        "gauge",
        "Status of the check's last run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        JOB_LABELS,
    ),
    MetricSpec(
        "drwatch_check_duration_seconds", "gauge", "How long the check's last run took.", JOB_LABELS
    ),
    MetricSpec(
        "drwatch_check_interval_seconds", "gauge", "The check's configured interval.", JOB_LABELS
    ),
    MetricSpec(
        "drwatch_check_last_success_timestamp_seconds",
        "gauge",
        "When the check last measured everything (absent until it has).",
        JOB_LABELS,
    ),
    MetricSpec(
        "drwatch_check_errors_total",
        "counter",
        "Failed check runs by reason (connect, query, permission, timeout, config, internal).",
        (*JOB_LABELS, "reason"),
    ),
    MetricSpec(
        "drwatch_rpo_exposure_seconds",
        "gauge",
        "Data at risk right now per recovery scenario, in seconds (absent while unmeasurable).",
        ("target", "scenario"),
    ),
    MetricSpec(
        "drwatch_rpo_exposure_last_measured_timestamp_seconds",
        "gauge",
        "When the scenario's exposure was last measured (the daemon's start if never).",
        ("target", "scenario"),
    ),
    MetricSpec(
        "drwatch_rpo_objective_seconds",
        "gauge",
        "The configured recovery point objective per scenario.",
        ("target", "scenario"),
    ),
    MetricSpec(
        "drwatch_rto_objective_seconds",
        "gauge",
        "The configured recovery time objective per scenario.",
        ("target", "scenario"),
    ),
    MetricSpec(
        "drwatch_config_section_enabled",
        "gauge",
        "1 if a configured section is monitored, 0 if it is off (its connection string is empty).",
        ("target", "section"),
    ),
    MetricSpec(
        "drwatch_config_last_reload_successful",
        "gauge",
        "1 if the last configuration load succeeded.",
    ),
    MetricSpec(
        "drwatch_config_last_reload_success_timestamp_seconds",
        "gauge",
        "When the configuration was last loaded successfully.",
    ),
    MetricSpec(
        "drwatch_build_info",
        "gauge",
        "Always 1; labels say which drwatch this is.",
        ("version", "python_version"),
    ),
)


def _family(spec: MetricSpec, labels: tuple[str, ...]) -> GaugeMetricFamily | CounterMetricFamily:
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=labels)


class DrwatchCollector(Collector):
    def __init__(
        self,
        store: ResultStore,
        current: Callable[[], Current],
        reload_state: Callable[[], ReloadState],
    ) -> None:
        self.store = store
        self.current = current
        self.reload_state = reload_state

    def collect(self) -> Iterator[Metric]:
        current = self.current()
        snap = self.store.snapshot()
        yield from self._check_metrics(current.jobs, snap.results)
        yield from self._self_metrics(current, snap)

    def _check_metrics(
        self, jobs: Iterable[Job], results: dict[JobKey, CheckResult]
    ) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        specs: dict[str, MetricSpec] = {}
        for job in jobs:
            for spec in job.metrics:
                specs.setdefault(spec.name, spec)
        for job in jobs:
            result = results.get(job.key)
            if result is None:
                continue
            for sample in result.samples:
                spec = specs[sample.name]
                family = families.get(sample.name)
                if family is None:
                    family = families[sample.name] = _family(spec, ("target", *spec.labels))
                labels = dict(sample.labels)
                family.add_metric(
                    [job.target, *(labels.get(k, "") for k in spec.labels)], sample.value
                )
        yield from families.values()

    def _self_metrics(self, current: Current, snap: Snapshot) -> Iterator[Metric]:
        by_name = {s.name: s for s in SELF_METRICS}
        fam = {name: _family(spec, spec.labels) for name, spec in by_name.items()}
        for job in current.jobs:
            jl = [job.target, job.check]
            fam["drwatch_check_interval_seconds"].add_metric(jl, job.interval)
            result = snap.results.get(job.key)
            if result is not None:
                fam["drwatch_check_up"].add_metric(jl, float(result.up))
                fam["drwatch_check_status"].add_metric(jl, float(result.status))
                fam["drwatch_check_duration_seconds"].add_metric(jl, result.duration_seconds)
            if job.key in snap.last_success:
                fam["drwatch_check_last_success_timestamp_seconds"].add_metric(
                    jl, snap.last_success[job.key]
                )
        for (target, check, reason), count in sorted(snap.errors.items()):
            fam["drwatch_check_errors_total"].add_metric([target, check, reason], count)
        exposures = combine(current.jobs, snap.results)
        for (target, scenario), exposure in exposures.items():
            objective = current.config.objective(current.config.target(target), scenario)
            labels = [target, scenario]
            if objective.rpo is not None:
                fam["drwatch_rpo_objective_seconds"].add_metric(labels, objective.rpo)
            if objective.rto is not None:
                fam["drwatch_rto_objective_seconds"].add_metric(labels, objective.rto)
            if exposure is not None and not math.isnan(exposure):
                fam["drwatch_rpo_exposure_seconds"].add_metric(labels, exposure)
        for (target, scenario), when in last_measured(current.jobs, snap).items():
            if (target, scenario) in exposures:
                fam["drwatch_rpo_exposure_last_measured_timestamp_seconds"].add_metric(
                    [target, scenario], when
                )
        for target_name, section, enabled in current.sections:
            fam["drwatch_config_section_enabled"].add_metric([target_name, section], float(enabled))
        reload = self.reload_state()
        fam["drwatch_config_last_reload_successful"].add_metric([], float(reload.successful))
        fam["drwatch_config_last_reload_success_timestamp_seconds"].add_metric(
            [], reload.last_success
        )
        fam["drwatch_build_info"].add_metric([__version__, platform.python_version()], 1.0)
        yield from fam.values()
