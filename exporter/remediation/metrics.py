"""Remediation on /metrics: decisions by outcome, leadership, mode and the kill switch."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from checks.base import MetricSpec
from core.config.schema import Config
from exporter.remediation.decision import OUTCOMES
from exporter.remediation.engine import RemediationEngine
from exporter.remediation.triggers import configured_actions

METRICS = (
    MetricSpec(
        "drwatch_remediation_actions_total",
        "counter",
        "Remediation decisions by outcome: executed, dry_run, skipped (a guard, limit, cooldown "
        "or the kill switch said no), failed.",
        ("target", "action", "outcome"),
    ),
    MetricSpec(
        "drwatch_remediation_leader",
        "gauge",
        "1 if this drwatch holds the target's remediation lock (only the leader acts).",
        ("target",),
    ),
    MetricSpec(
        "drwatch_remediation_dry_run",
        "gauge",
        "1 if remediation on the target only decides and reports; 0 if it acts.",
        ("target",),
    ),
    MetricSpec(
        "drwatch_remediation_kill_switch",
        "gauge",
        "1 while the kill switch (file or SIGUSR1) stops every remediation on the target.",
        ("target",),
    ),
)


class RemediationCollector(Collector):
    def __init__(self, engine: RemediationEngine, config: Callable[[], Config]) -> None:
        self.engine = engine
        self.config = config

    def collect(self) -> Iterator[Metric]:
        config = self.config()
        specs = {s.name: s for s in METRICS}
        actions_total = CounterMetricFamily(
            "drwatch_remediation_actions_total",
            specs["drwatch_remediation_actions_total"].help,
            labels=("target", "action", "outcome"),
        )
        gauges = {
            name: GaugeMetricFamily(name, specs[name].help, labels=("target",))
            for name in (
                "drwatch_remediation_leader",
                "drwatch_remediation_dry_run",
                "drwatch_remediation_kill_switch",
            )
        }
        counts = self.engine.counts()
        for target in config.targets:
            rc = config.remediation_for(target)
            if not rc.enabled:
                continue
            # Every configured action x outcome from zero, so rate() sees the first decision.
            for action in configured_actions(config, target):
                for outcome in OUTCOMES:
                    actions_total.add_metric(
                        [target.name, action, outcome],
                        counts.get((target.name, action, outcome), 0),
                    )
            leader = self.engine.is_leader(target.name)
            if target.postgres is not None and leader is not None:
                gauges["drwatch_remediation_leader"].add_metric([target.name], float(leader))
            gauges["drwatch_remediation_dry_run"].add_metric([target.name], float(rc.dry_run))
            engaged = self.engine.kill_switch.why(rc) is not None
            gauges["drwatch_remediation_kill_switch"].add_metric([target.name], float(engaged))
        yield actions_total
        yield from gauges.values()
