"""drwatch's own metrics, from the ResultStore on every scrape; never touches a database."""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from dataclasses import dataclass

from core.metrics import MetricSpec, counter, gauge
from core.statefile import STATE_WRITES
from exporter import __version__
from exporter.runtime.current import Current, ReloadState
from exporter.runtime.exposures import combine, last_measured
from exporter.runtime.results import CheckResult, JobKey, JobView, ResultStore, Snapshot
from exporter.runtime.runner import Job
from exporter.web.exposition import Lines, page, sample_line

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
CHECK_DATA_TIMESTAMP_SECONDS = gauge(
    "drwatch_check_data_timestamp_seconds",
    "When the data the check's last run judged was read at its source, where that is earlier "
    "than the run (a store listing or a catalogue it kept): how old the value is, apart from "
    "when drwatch last looked (absent where the data is the run's own).",
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
SLO_OBJECTIVE_RATIO = gauge(
    "drwatch_slo_objective_ratio",
    "The share of time the scenario must be within its objectives (the SLO the error budget and "
    "burn-rate rules use; default 0.999 of 30 days).",
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
STATE_WRITABLE = gauge(
    "drwatch_state_writable",
    "1 if drwatch's last write to state_dir worked; 0: read-only or full, state kept in memory "
    "only (lost at a restart).",
)

SELF_METRICS = (
    CHECK_UP,
    CHECK_STATUS,
    CHECK_DURATION_SECONDS,
    CHECK_INTERVAL_SECONDS,
    CHECK_LAST_SUCCESS_TIMESTAMP_SECONDS,
    CHECK_DATA_TIMESTAMP_SECONDS,
    CHECK_ERRORS_TOTAL,
    RPO_EXPOSURE_SECONDS,
    RPO_EXPOSURE_LAST_MEASURED_TIMESTAMP_SECONDS,
    RPO_OBJECTIVE_SECONDS,
    RTO_OBJECTIVE_SECONDS,
    SLO_OBJECTIVE_RATIO,
    CONFIG_SECTION_ENABLED,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
    SHARD_INFO,
    SHARD_TARGETS,
    BUILD_INFO,
    STATE_WRITABLE,
)


@dataclass(frozen=True)
class _Rendered:
    """One job's lines, by family: its check's samples and its own health."""

    job: Job
    version: int
    check_lines: dict[str, str]
    self_lines: dict[str, str]


def check_lines(result: CheckResult) -> dict[str, str]:
    """A result's samples as exposition text by family, with its target's label."""
    if result.check_lines is not None:  # rendered where the check ran (a worker process)
        return result.check_lines
    lines = Lines()
    target = (("target", result.target),)
    for sample in result.samples:
        lines.add(sample.spec, sample.value, (*target, *sample.labels))
    return lines.joined()


def _render_job(job: Job, view: JobView) -> _Rendered:
    own = Lines()
    result = view.result
    labels = (("target", job.target), ("check", job.check))
    own.add(CHECK_INTERVAL_SECONDS, job.interval, labels)
    if result is not None:
        own.add(CHECK_UP, float(result.up), labels)
        own.add(CHECK_STATUS, float(result.status), labels)
        own.add(CHECK_DURATION_SECONDS, result.duration_seconds, labels)
        if result.data_timestamp is not None:
            own.add(CHECK_DATA_TIMESTAMP_SECONDS, result.data_timestamp, labels)
    if view.last_success is not None:
        own.add(CHECK_LAST_SUCCESS_TIMESTAMP_SECONDS, view.last_success, labels)
    for reason, count in view.errors:
        own.add(CHECK_ERRORS_TOTAL, count, (*labels, ("reason", reason)))
    return _Rendered(job, view.version, check_lines(result) if result else {}, own.joined())


class _Static:
    """A config's objective lines (by target and scenario, as asked) and section lines."""

    def __init__(self, current: Current) -> None:
        self.current = current
        self._objectives: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self.sections = tuple(
            sample_line(CONFIG_SECTION_ENABLED.name, (("target", t), ("section", s)), float(on))
            for t, s, on in current.sections
        )

    def objectives(self, target: str, scenario: str) -> tuple[tuple[str, str], ...]:
        found = self._objectives.get((target, scenario))
        if found is None:
            config = self.current.config
            objective = config.objective(config.target(target), scenario)
            labels = (("target", target), ("scenario", scenario))
            found = self._objectives[(target, scenario)] = tuple(
                (spec.name, sample_line(spec.name, labels, value))
                for spec, value in (
                    (RPO_OBJECTIVE_SECONDS, objective.rpo),
                    (RTO_OBJECTIVE_SECONDS, objective.rto),
                    (SLO_OBJECTIVE_RATIO, objective.slo),
                )
                if value is not None
            )
        return found


class MetricsPage:
    """drwatch's own families as text, fresh on every scrape but rendered a job at a time:
    `prerender` runs when a job's result is stored, so a scrape of a fleet's thousands of
    lines mostly concatenates. A job's cached lines are used only while its Job and its
    store version are the ones the scrape sees; anything else is rendered then and there."""

    def __init__(
        self,
        store: ResultStore,
        current: Callable[[], Current],
        reload_state: Callable[[], ReloadState],
    ) -> None:
        self.store = store
        self.current = current
        self.reload_state = reload_state
        self._rendered: dict[JobKey, _Rendered] = {}
        self._specs: tuple[Current | None, list[MetricSpec]] = (None, [])
        self._static_for: _Static | None = None

    def prerender(self, job: Job) -> None:
        self._rendered[job.key] = _render_job(job, self.store.job_view(job.key))

    def render(self) -> str:
        current = self.current()
        snap = self.store.snapshot()
        parts = []
        for job in current.jobs:
            entry = self._rendered.get(job.key)
            if entry is None or entry.job is not job or entry.version != snap.versions.get(job.key):
                entry = _render_job(job, self.store.job_view(job.key))
                self._rendered[job.key] = entry
            parts.append(entry)
        if len(self._rendered) > len(parts):  # jobs a reload removed
            keep = {job.key for job in current.jobs}
            # Over a copy: check threads add entries while a scrape prunes.
            for key in [k for k in list(self._rendered) if k not in keep]:
                self._rendered.pop(key, None)
        return page(self._check_specs(current), (p.check_lines for p in parts), False) + page(
            SELF_METRICS, [*(p.self_lines for p in parts), self._scrape_lines(current, snap)], True
        )

    def _check_specs(self, current: Current) -> list[MetricSpec]:
        cached_for, specs = self._specs
        if cached_for is not current:
            specs = list({spec.name: spec for job in current.jobs for spec in job.metrics}.values())
            self._specs = (current, specs)
        return specs

    def _static(self, current: Current) -> _Static:
        """What only a reload changes, rendered once per config: a fleet's thousands of
        objective and section lines are most of a page build otherwise."""
        static = self._static_for
        if static is None or static.current is not current:
            static = self._static_for = _Static(current)
        return static

    def _scrape_lines(self, current: Current, snap: Snapshot) -> dict[str, str]:
        """What is not one job's: objectives and exposures, sections, reload, shard, build."""
        lines = Lines()
        exposures = combine(current.jobs, snap.results)
        measured = last_measured(current.jobs, snap)
        static = self._static(current)
        for (target, scenario), exposure in exposures.items():
            labels = (("target", target), ("scenario", scenario))
            for name, line in static.objectives(target, scenario):
                lines.add_line(name, line)
            if exposure is not None and not math.isnan(exposure):
                lines.add(RPO_EXPOSURE_SECONDS, exposure, labels)
            if (target, scenario) in measured:
                lines.add(
                    RPO_EXPOSURE_LAST_MEASURED_TIMESTAMP_SECONDS,
                    measured[(target, scenario)],
                    labels,
                )
        for line in static.sections:
            lines.add_line(CONFIG_SECTION_ENABLED.name, line)
        reload = self.reload_state()
        lines.add(CONFIG_LAST_RELOAD_SUCCESSFUL, float(reload.successful), ())
        lines.add(CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, reload.last_success, ())
        shard = current.shard
        lines.add(
            SHARD_INFO, 1.0, (("shard", str(shard.index)), ("total_shards", str(shard.total)))
        )
        lines.add(SHARD_TARGETS, len(current.config.targets), ())
        build = (("version", __version__), ("python_version", platform.python_version()))
        lines.add(BUILD_INFO, 1.0, build)
        lines.add(STATE_WRITABLE, float(STATE_WRITES.writable), ())
        return lines.joined()
