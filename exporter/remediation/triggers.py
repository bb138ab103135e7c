"""Which configured actions the check results call for, and why."""

from __future__ import annotations

from collections.abc import Mapping

from checks import connections, redis_persistence
from checks.connections import ConnectionUsage
from core.config.remediation import Action, RemediationConfig
from core.config.schema import Config, Target
from exporter.runtime.results import CheckResult


def configured_actions(config: Config, target: Target) -> list[Action]:
    """The actions configured, enabled and applicable to what the target has."""
    actions = config.remediation_for(target).actions
    out: list[Action] = []
    if target.postgres is not None:
        for name, opts in (
            ("terminate_idle_connections", actions.terminate_idle_connections),
            ("terminate_idle_in_transaction", actions.terminate_idle_in_transaction),
        ):
            if opts is not None and opts.enabled:
                out.append(name)  # type: ignore[arg-type]
    if target.redis is not None and actions.redis_bgsave and actions.redis_bgsave.enabled:
        out.append("redis_bgsave")
    return out


def triggers_met(
    config: Config, target: Target, rc: RemediationConfig, results: Mapping[str, CheckResult]
) -> dict[Action, str]:
    """The configured actions whose own condition the check results meet, and why."""
    out: dict[Action, str] = {}
    actions = rc.actions
    configured = configured_actions(config, target)
    activity = results.get(connections.NAME)
    usage = activity.facts if activity is not None and activity.up else None
    if isinstance(usage, ConnectionUsage):
        idle = actions.terminate_idle_connections
        ratio = usage.utilization_ratio
        if idle and "terminate_idle_connections" in configured:
            threshold = idle.when_utilization_above
            if idle.always:
                out["terminate_idle_connections"] = "always: true"
            elif threshold and ratio >= threshold:
                out["terminate_idle_connections"] = (
                    f"utilisation {ratio:.0%} reached {threshold:.0%}"
                )
        iit = actions.terminate_idle_in_transaction
        oldest = usage.oldest_idle_in_transaction_seconds
        if iit and "terminate_idle_in_transaction" in configured and oldest > iit.idle_for:
            out["terminate_idle_in_transaction"] = (
                f"a session idle in transaction for {oldest:.0f}s (over {iit.idle_for:g}s)"
            )
    persistence = results.get(redis_persistence.NAME)
    if persistence is not None and "redis_bgsave" in configured:
        rpo = config.objective(target, "redis").rpo
        exposure = persistence.exposures.get("redis")
        if rpo is not None and exposure is not None and exposure > rpo:
            out["redis_bgsave"] = f"redis exposure {exposure:.0f}s over its objective {rpo:g}s"
    return out
