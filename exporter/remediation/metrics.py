"""Remediation on /metrics: decisions by outcome, leadership, mode and the kill switch."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from core.config.schema import Config
from core.metrics import Families, counter, gauge
from exporter.remediation.decision import OUTCOMES
from exporter.remediation.engine import RemediationEngine
from exporter.remediation.triggers import configured_actions

REMEDIATION_ACTIONS_TOTAL = counter(
    "drwatch_remediation_actions_total",
    "Remediation decisions by outcome: executed, dry_run, skipped (a guard, limit, cooldown "
    "or the kill switch said no), failed.",
    "target",
    "action",
    "outcome",
)
REMEDIATION_LEADER = gauge(
    "drwatch_remediation_leader",
    "1 if this drwatch holds the target's remediation lock (only the leader acts).",
    "target",
)
REMEDIATION_DRY_RUN = gauge(
    "drwatch_remediation_dry_run",
    "1 if remediation on the target only decides and reports; 0 if it acts.",
    "target",
)
REMEDIATION_KILL_SWITCH = gauge(
    "drwatch_remediation_kill_switch",
    "1 while the kill switch (file or SIGUSR1) stops every remediation on the target.",
    "target",
)

METRICS = (
    REMEDIATION_ACTIONS_TOTAL,
    REMEDIATION_LEADER,
    REMEDIATION_DRY_RUN,
    REMEDIATION_KILL_SWITCH,
)


class RemediationCollector(Collector):
    def __init__(self, engine: RemediationEngine, config: Callable[[], Config]) -> None:
        self.engine = engine
        self.config = config

    def describe(self) -> Iterator[Metric]:
        yield from Families(METRICS)

    def collect(self) -> Iterator[Metric]:
        config = self.config()
        families = Families(METRICS)
        counts = self.engine.counts()
        for target in config.targets:
            rc = config.remediation_for(target)
            if not rc.enabled:
                continue
            name = target.name
            # Every configured action x outcome from zero, so rate() sees the first decision.
            for action in configured_actions(config, target):
                for outcome in OUTCOMES:
                    count = counts.get((name, action, outcome), 0)
                    families.add(
                        REMEDIATION_ACTIONS_TOTAL,
                        count,
                        target=name,
                        action=action,
                        outcome=outcome,
                    )
            leader = self.engine.is_leader(name)
            if target.postgres is not None and leader is not None:
                families.add(REMEDIATION_LEADER, float(leader), target=name)
            families.add(REMEDIATION_DRY_RUN, float(rc.dry_run), target=name)
            engaged = self.engine.kill_switch.why(rc) is not None
            families.add(REMEDIATION_KILL_SWITCH, float(engaged), target=name)
        yield from families
