"""Which configured actions the check results call for, and why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from checks import connections, redis_persistence
from checks.connections import ConnectionUsage
from core.config.remediation import Action, RemediationConfig, TerminateIdleOptions
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


class Trigger(NamedTuple):
    met: bool
    why: str  # why it is met, or why not


def assess(
    config: Config, target: Target, rc: RemediationConfig, results: Mapping[str, CheckResult]
) -> dict[Action, Trigger]:
    """Each configured action: whether the check results meet its own condition, and why."""
    out: dict[Action, Trigger] = {}
    actions = rc.actions
    configured = configured_actions(config, target)
    activity = results.get(connections.NAME)
    usage = activity.facts if activity is not None and activity.up else None
    usage = usage if isinstance(usage, ConnectionUsage) else None
    if actions.terminate_idle_connections and "terminate_idle_connections" in configured:
        out["terminate_idle_connections"] = _idle(actions.terminate_idle_connections, usage)
    iit = actions.terminate_idle_in_transaction
    if iit and "terminate_idle_in_transaction" in configured:
        out["terminate_idle_in_transaction"] = _idle_in_transaction(iit.idle_for, usage)
    if "redis_bgsave" in configured:
        rpo = config.objective(target, "redis").rpo
        out["redis_bgsave"] = _unsaved(rpo, results.get(redis_persistence.NAME))
    return out


_UNMEASURED = "the connections check has no result (down or not run yet)"


def _idle(opts: TerminateIdleOptions, usage: ConnectionUsage | None) -> Trigger:
    if opts.always:
        return Trigger(True, "always: true")
    if usage is None:
        return Trigger(False, _UNMEASURED)
    ratio, threshold = usage.utilization_ratio, opts.when_utilization_above or 1.0
    if ratio >= threshold:
        return Trigger(True, f"utilisation {ratio:.0%} reached {threshold:.0%}")
    return Trigger(False, f"utilisation {ratio:.0%} below {threshold:.0%}")


def _idle_in_transaction(idle_for: float, usage: ConnectionUsage | None) -> Trigger:
    if usage is None:
        return Trigger(False, _UNMEASURED)
    oldest = usage.oldest_idle_in_transaction_seconds
    if oldest > idle_for:
        return Trigger(
            True, f"a session idle in transaction for {oldest:.0f}s (over {idle_for:g}s)"
        )
    return Trigger(
        False, f"no session idle in transaction over {idle_for:g}s (the oldest: {oldest:.0f}s)"
    )


def _unsaved(rpo: float | None, persistence: CheckResult | None) -> Trigger:
    exposure = persistence.exposures.get("redis") if persistence is not None else None
    if rpo is None or exposure is None:
        return Trigger(False, "the redis exposure or its objective is not measured")
    if exposure > rpo:
        return Trigger(True, f"redis exposure {exposure:.0f}s over its objective {rpo:g}s")
    return Trigger(False, f"redis exposure {exposure:.0f}s within its objective {rpo:g}s")
