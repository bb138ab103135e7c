"""Builds fresh metric families from the ResultStore on every scrape; never touches a database."""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from core.metrics import Families, MetricSpec, counter, gauge
from exporter import __version__
from exporter.runtime.current import Current, ReloadState
from exporter.runtime.exposures import combine, last_measured
from exporter.runtime.results import CheckResult, JobKey, ResultStore, Snapshot
from exporter.runtime.runner import Job

JOB_LABELS = ("target", "check")

CHECK_UP = gauge("drwatch_check_up", "1 if the check's last run measured everything.", *JOB_LABELS)
CHECK_STATUS = gauge(
    "drwatch_check_status",
    "Status of the check's last run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    *JOB_LABELS,
)
CHECK_DURATION_SECONDS = gauge(
    "drwatch_check_duration_seconds", "How long the check's last run took.", *JOB_LABELS
)
CHECK_INTERVAL_SECONDS = gauge(
    "drwatch_check_interval_seconds", "The check's configured interval.", *JOB_LABELS
)
CHECK_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "drwatch_check_last_success_timestamp_seconds",
    "When the check last measured everything (absent until it has).",
    *JOB_LABELS,
)
CHECK_ERRORS_TOTAL = counter(
    "drwatch_check_errors_total",
    "Failed check runs by reason (connect, query, permission, timeout, config, internal).",
    *JOB_LABELS,
    "reason",
)
RPO_EXPOSURE_SECONDS = gauge(
    "drwatch_rpo_exposure_seconds",
    "Data at risk right now per recovery scenario, in seconds (absent while unmeasurable).",
    "target",
    "scenario",
)
RPO_EXPOSURE_LAST_MEASURED_TIMESTAMP_SECONDS = gauge(
    "drwatch_rpo_exposure_last_measured_timestamp_seconds",
    "When the scenario's exposure was last measured (the daemon's start if never).",
    "target",
    "scenario",
)
RPO_OBJECTIVE_SECONDS = gauge(
    "drwatch_rpo_objective_seconds",
    "The configured recovery point objective per scenario.",
    "target",
    "scenario",
)
RTO_OBJECTIVE_SECONDS = gauge(
    "drwatch_rto_objective_seconds",
    "The configured recovery time objective per scenario.",
    "target",
    "scenario",
)
CONFIG_SECTION_ENABLED = gauge(
    "drwatch_config_section_enabled",
    "1 if a configured section is monitored, 0 if it is off (its connection string is empty).",
    "target",
    "section",
)
CONFIG_LAST_RELOAD_SUCCESSFUL = gauge(
    "drwatch_config_last_reload_successful", "1 if the last configuration load succeeded."
)
CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "drwatch_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully.",
)
SHARD_INFO = gauge(
    "drwatch_shard_info",
    "Always 1; labels say which shard of how many this replica is (--shard, --total-shards).",
    "shard",
    "total_shards",
)
SHARD_TARGETS = gauge(
    "drwatch_shard_targets", "How many of the configured targets this replica's shard runs."
)
BUILD_INFO = gauge(
    "drwatch_build_info", "Always 1; labels say which drwatch this is.", "version", "python_version"
)

SELF_METRICS = (
    CHECK_UP,
    CHECK_STATUS,
    CHECK_DURATION_SECONDS,
    CHECK_INTERVAL_SECONDS,
    CHECK_LAST_SUCCESS_TIMESTAMP_SECONDS,
    CHECK_ERRORS_TOTAL,
    RPO_EXPOSURE_SECONDS,
    RPO_EXPOSURE_LAST_MEASURED_TIMESTAMP_SECONDS,
    RPO_OBJECTIVE_SECONDS,
    RTO_OBJECTIVE_SECONDS,
    CONFIG_SECTION_ENABLED,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
    SHARD_INFO,
    SHARD_TARGETS,
    BUILD_INFO,
)


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

    def describe(self) -> Iterator[Metric]:
        yield from Families(_check_specs(self.current().jobs), ("target",))
        yield from Families(SELF_METRICS)

    def collect(self) -> Iterator[Metric]:
        current = self.current()
        snap = self.store.snapshot()
        yield from self._check_metrics(current.jobs, snap.results)
        yield from self._self_metrics(current, snap)

    def _check_metrics(
        self, jobs: Iterable[Job], results: dict[JobKey, CheckResult]
    ) -> Iterator[Metric]:
        jobs = list(jobs)
        families = Families(_check_specs(jobs), ("target",))
        for job in jobs:
            result = results.get(job.key)
            for sample in result.samples if result else ():
                families.add_sample(sample, job.target)
        yield from families.with_samples()

    def _self_metrics(self, current: Current, snap: Snapshot) -> Iterator[Metric]:
        families = Families(SELF_METRICS)
        add = families.add
        for job in current.jobs:
            labels = {"target": job.target, "check": job.check}
            add(CHECK_INTERVAL_SECONDS, job.interval, **labels)
            result = snap.results.get(job.key)
            if result is not None:
                add(CHECK_UP, float(result.up), **labels)
                add(CHECK_STATUS, float(result.status), **labels)
                add(CHECK_DURATION_SECONDS, result.duration_seconds, **labels)
            if job.key in snap.last_success:
                add(CHECK_LAST_SUCCESS_TIMESTAMP_SECONDS, snap.last_success[job.key], **labels)
        for (target, check, reason), count in sorted(snap.errors.items()):
            add(CHECK_ERRORS_TOTAL, count, target=target, check=check, reason=reason)
        self._objectives(families, current, snap)
        for target_name, section, enabled in current.sections:
            add(CONFIG_SECTION_ENABLED, float(enabled), target=target_name, section=section)
        reload = self.reload_state()
        add(CONFIG_LAST_RELOAD_SUCCESSFUL, float(reload.successful))
        add(CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, reload.last_success)
        shard = current.shard
        add(SHARD_INFO, 1.0, shard=str(shard.index), total_shards=str(shard.total))
        add(SHARD_TARGETS, len(current.config.targets))
        add(BUILD_INFO, 1.0, version=__version__, python_version=platform.python_version())
        yield from families

    @staticmethod
    def _objectives(families: Families, current: Current, snap: Snapshot) -> None:
        exposures = combine(current.jobs, snap.results)
        for (target, scenario), exposure in exposures.items():
            objective = current.config.objective(current.config.target(target), scenario)
            labels = {"target": target, "scenario": scenario}
            if objective.rpo is not None:
                families.add(RPO_OBJECTIVE_SECONDS, objective.rpo, **labels)
            if objective.rto is not None:
                families.add(RTO_OBJECTIVE_SECONDS, objective.rto, **labels)
            if exposure is not None and not math.isnan(exposure):
                families.add(RPO_EXPOSURE_SECONDS, exposure, **labels)
        for (target, scenario), when in last_measured(current.jobs, snap).items():
            if (target, scenario) in exposures:
                families.add(
                    RPO_EXPOSURE_LAST_MEASURED_TIMESTAMP_SECONDS,
                    when,
                    target=target,
                    scenario=scenario,
                )


def _check_specs(jobs: Iterable[Job]) -> list[MetricSpec]:
    return [spec for job in jobs for spec in job.metrics]
