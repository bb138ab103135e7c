"""Restore drills on /metrics: the measured RTO beside the objective, each phase, what the copy
held, and when the last drill ran and passed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from core.config.drills import RUNBOOK_TESTS
from core.config.schema import Config
from core.metrics import Families, counter, gauge
from exporter.drills.engine import OUTCOMES, DrillEngine, overdue
from exporter.drills.failover import FailoverObserver
from exporter.drills.isolation import MODES
from exporter.drills.result import DrillResult

KEYS = ("target", "scenario")
DRILL_CONFIGURED_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_expected_since_timestamp_seconds",
    "Since when this drwatch expects the drill (its start, or the reload that configured it).",
    *KEYS,
)
DRILL_MAX_AGE_SECONDS = gauge(
    "drwatch_drill_max_age_seconds",
    "The configured age after which a drill without a pass is overdue.",
    *KEYS,
)
DRILL_LAST_RUN_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_last_run_timestamp_seconds", "When the last drill started.", *KEYS
)
DRILL_SUCCESS = gauge(
    "drwatch_drill_success", "1 if the last drill restored and checked a copy, 0 if not.", *KEYS
)
DRILL_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_last_success_timestamp_seconds",
    "When the last drill that passed started (absent until one has).",
    *KEYS,
)
DRILL_DURATION_SECONDS = gauge(
    "drwatch_drill_duration_seconds", "How long the last drill took, passed or not.", *KEYS
)
DRILL_PHASE_DURATION_SECONDS = gauge(
    "drwatch_drill_phase_duration_seconds",
    "How long each phase of the last drill took (download, restore, verify).",
    *KEYS,
    "phase",
)
RTO_MEASURED_SECONDS = gauge(
    "drwatch_rto_measured_seconds",
    "The recovery time the last passing drill measured: start to a restored, checked, "
    "connectable database.",
    *KEYS,
)
DRILL_RECOVERED_TO_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_recovered_to_timestamp_seconds",
    "The newest data the last drill's copy held.",
    *KEYS,
)
DRILL_TABLE_ROWS = gauge(
    "drwatch_drill_table_rows", "Rows of a watched table in the last drill's copy.", *KEYS, "table"
)
DRILL_TABLE_ROWS_MISSING = gauge(
    "drwatch_drill_table_rows_missing",
    "Rows production holds up to the copy's newest row that the copy lacks.",
    *KEYS,
    "table",
)
DRILL_RUNNING = gauge("drwatch_drill_running", "1 while a drill runs.", *KEYS)
RTO_FORECAST_SECONDS = gauge(
    "drwatch_rto_forecast_seconds",
    "The RTO a drill would measure at the backup size the store's trend gives in `horizon` "
    "(30d, 90d): the phases' seconds per byte of the last passing drills times that size.",
    *KEYS,
    "horizon",
)
DRILL_PHASE_THROUGHPUT = gauge(
    "drwatch_drill_phase_throughput_bytes_per_second",
    "Bytes each phase of the last drill moved (downloaded, restored, replayed) per second.",
    *KEYS,
    "phase",
)
DRILL_WINDOW_START_RECOVERED = gauge(
    "drwatch_drill_window_start_recovered",
    "1 if the last pitr drill of the recovery window's start (point oldest or rotate) recovered "
    "the backup drwatch_recovery_window_start_timestamp_seconds reports, 0 if it did not.",
    "target",
)
FAILOVER_LAST_DURATION_SECONDS = gauge(
    "drwatch_failover_last_duration_seconds",
    "How long the newest primary failover took; `source`: RDS events, observed (a new timeline "
    "between two checks: at most this long) or a drill.",
    "target",
    "source",
)
FAILOVER_LAST_TIMESTAMP_SECONDS = gauge(
    "drwatch_failover_last_timestamp_seconds",
    "When the newest primary failover completed.",
    "target",
    "source",
)
DRILL_OVERDUE = gauge(
    "drwatch_drill_overdue",
    "1 when no drill has passed within max_age (since the last pass, or since drwatch began "
    "expecting one): the runbook's testing schedule is not kept.",
    *KEYS,
)
DRILL_SCHEDULE_INFO = gauge(
    "drwatch_drill_schedule_info",
    "The scenario's test in the runbook's Backup Testing Schedule, its frequency and cron.",
    *KEYS,
    "test",
    "frequency",
    "schedule",
)
DRILL_NEXT_RUN_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_next_run_timestamp_seconds", "When the scheduler starts the drill next.", *KEYS
)
DRILLS = counter(
    "drwatch_drills_total",
    "Drills by outcome: passed, failed (the backup or the restore), deferred (no capacity: "
    "drills.max_concurrent or drills.disk_budget; nothing was judged).",
    *KEYS,
    "outcome",
)
DRILL_LAST_DEFERRED_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_last_deferred_timestamp_seconds",
    "When a drill was last deferred for want of capacity.",
    *KEYS,
)

DRILL_MEASURED_DATA_LOSS_SECONDS = gauge(
    "drwatch_drill_measured_data_loss_seconds",
    "The last drill's data loss by the heartbeat: production's tick when it started, less the "
    "newest tick in the copy it restored (postgres.heartbeat, redis.heartbeat).",
    *KEYS,
)
HEARTBEAT_LAST_WRITE_TIMESTAMP_SECONDS = gauge(
    "drwatch_drill_heartbeat_last_write_timestamp_seconds",
    "When drwatch last wrote the heartbeat tick on the primary (postgres.heartbeat, "
    "redis.heartbeat).",
    "target",
    "store",
)
DRILL_ISOLATION = gauge(
    "drwatch_drill_isolation",
    "1 for the isolation the target's restores run in (bwrap: a sandbox; user: another OS "
    "user; none: drwatch's own user), 0 for the others; all 0: none its settings allow.",
    "target",
    "mode",
)

METRICS = (
    DRILL_CONFIGURED_TIMESTAMP_SECONDS,
    DRILL_MAX_AGE_SECONDS,
    DRILL_LAST_RUN_TIMESTAMP_SECONDS,
    DRILL_SUCCESS,
    DRILL_LAST_SUCCESS_TIMESTAMP_SECONDS,
    DRILL_DURATION_SECONDS,
    DRILL_PHASE_DURATION_SECONDS,
    RTO_MEASURED_SECONDS,
    DRILL_RECOVERED_TO_TIMESTAMP_SECONDS,
    DRILL_TABLE_ROWS,
    DRILL_TABLE_ROWS_MISSING,
    DRILL_RUNNING,
    RTO_FORECAST_SECONDS,
    DRILL_PHASE_THROUGHPUT,
    FAILOVER_LAST_DURATION_SECONDS,
    FAILOVER_LAST_TIMESTAMP_SECONDS,
    DRILL_WINDOW_START_RECOVERED,
    DRILL_OVERDUE,
    DRILL_SCHEDULE_INFO,
    DRILL_NEXT_RUN_TIMESTAMP_SECONDS,
    DRILLS,
    DRILL_LAST_DEFERRED_TIMESTAMP_SECONDS,
    DRILL_ISOLATION,
    DRILL_MEASURED_DATA_LOSS_SECONDS,
    HEARTBEAT_LAST_WRITE_TIMESTAMP_SECONDS,
)


class DrillCollector(Collector):
    def __init__(
        self,
        engine: DrillEngine,
        config: Callable[[], Config],
        failovers: FailoverObserver | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.failovers = failovers

    def describe(self) -> Iterator[Metric]:
        yield from Families(METRICS)

    def collect(self) -> Iterator[Metric]:
        config = self.config()
        families = Families(METRICS)
        add = families.add
        last, passed, expected = self.engine.snapshot()
        last_deferred, counts = self.engine.deferrals()
        running = self.engine.running_now()
        now = time.time()
        for target in config.targets:
            drills = target.drills
            for scenario in target.drill_scenarios():
                assert drills is not None
                key = (target.name, scenario)
                k = {"target": target.name, "scenario": scenario}
                max_age = drills.max_age_of(scenario)
                add(DRILL_MAX_AGE_SECONDS, max_age, **k)
                add(DRILL_RUNNING, float(key in running), **k)
                test, frequency, _, _ = RUNBOOK_TESTS[scenario]
                schedule = drills.schedule_of(scenario)
                add(DRILL_SCHEDULE_INFO, 1, **k, test=test, frequency=frequency, schedule=schedule)
                if (nxt := self.engine.next_run(key)) is not None:
                    add(DRILL_NEXT_RUN_TIMESTAMP_SECONDS, nxt, **k)
                late = overdue(passed, expected, key, max_age, now)
                if late is not None:
                    add(DRILL_OVERDUE, float(late), **k)
                if key in expected:
                    add(DRILL_CONFIGURED_TIMESTAMP_SECONDS, expected[key], **k)
                if key in passed:
                    good = passed[key]
                    add(DRILL_LAST_SUCCESS_TIMESTAMP_SECONDS, good.started_at, **k)
                    add(RTO_MEASURED_SECONDS, good.duration_seconds, **k)
                if key in last:
                    self._last(families, last[key], k)
                if key in last_deferred:
                    add(DRILL_LAST_DEFERRED_TIMESTAMP_SECONDS, last_deferred[key].started_at, **k)
                for horizon, seconds in self.engine.forecasts.get(key, {}).items():
                    add(RTO_FORECAST_SECONDS, seconds, **k, horizon=horizon)
                for outcome in OUTCOMES:
                    add(DRILLS, counts.get((*key, outcome), 0), **k, outcome=outcome)
        targets = {t.name for t in config.targets}
        for (name, store), writer in self.engine.heartbeats.items():
            if name in targets and writer.last_write is not None:
                add(HEARTBEAT_LAST_WRITE_TIMESTAMP_SECONDS, writer.last_write, target=name,
                    store=store)  # fmt: skip
        for name, mode in self.engine.isolation.items():
            if name in targets:
                for each in MODES:
                    add(DRILL_ISOLATION, float(each == mode), target=name, mode=each)
        for name, recovered in self.engine.window_start_recovered.items():
            if name in targets:
                add(DRILL_WINDOW_START_RECOVERED, recovered, target=name)
        newest = self.failovers.newest() if self.failovers else {}
        for name, failover in newest.items():
            if name in targets:
                k = {"target": name, "source": failover.source}
                add(FAILOVER_LAST_DURATION_SECONDS, failover.duration_seconds, **k)
                add(FAILOVER_LAST_TIMESTAMP_SECONDS, failover.completed_at, **k)
                # The newest real failover is the measured primary_failover RTO.
                add(RTO_MEASURED_SECONDS, failover.duration_seconds, target=name,
                    scenario="primary_failover")  # fmt: skip
        yield from families

    @staticmethod
    def _last(families: Families, result: DrillResult, k: dict[str, str]) -> None:
        add = families.add
        add(DRILL_LAST_RUN_TIMESTAMP_SECONDS, result.started_at, **k)
        add(DRILL_SUCCESS, float(result.ok), **k)
        add(DRILL_DURATION_SECONDS, result.duration_seconds, **k)
        for phase, seconds in result.phases.items():
            add(DRILL_PHASE_DURATION_SECONDS, seconds, **k, phase=phase)
            if result.phase_bytes.get(phase) and seconds > 0:
                add(DRILL_PHASE_THROUGHPUT, result.phase_bytes[phase] / seconds, **k, phase=phase)
        if result.recovered_to is not None:
            add(DRILL_RECOVERED_TO_TIMESTAMP_SECONDS, result.recovered_to, **k)
        if (loss := result.values.get("measured_data_loss_seconds")) is not None:
            add(DRILL_MEASURED_DATA_LOSS_SECONDS, float(loss), **k)
        for table, (rows, missing) in result.tables.items():
            add(DRILL_TABLE_ROWS, rows, **k, table=table)
            add(DRILL_TABLE_ROWS_MISSING, missing, **k, table=table)
