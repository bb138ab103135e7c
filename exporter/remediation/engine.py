"""The remediation engine: decides from check results, acts only when allowed, audits everything.

Off unless `remediation.enabled`, dry-run unless `dry_run: false` (or `drwatch remediate
--execute`), leader-locked per target, rate-limited by a cooldown per action, stopped by the kill
switch. Every decision (executed, dry_run, skipped and why, failed) is one structured log line
on `drwatch.remediation` and a count in `drwatch_remediation_actions_total`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from checks import connections, redis_persistence
from checks.support.pg import session
from core.config.remediation import (
    Action,
    RemediationConfig,
    TerminateIdleInTransactionOptions,
    TerminateIdleOptions,
)
from core.config.schema import Config, Target
from core.errors import CheckError
from exporter.remediation import redis as remediation_redis
from exporter.remediation.decision import Decision
from exporter.remediation.killswitch import KillSwitch
from exporter.remediation.postgres import LeaderLock, carry_out, plan_terminations
from exporter.remediation.triggers import assess, configured_actions
from exporter.runtime.results import CheckResult

log = logging.getLogger("drwatch.remediation")

# The checks whose results remediation decides from.
REMEDIATION_INPUTS = frozenset({connections.NAME, redis_persistence.NAME})


class RemediationEngine:
    """Passes per target and input, one at a time each; cooldowns and counts in memory (a restart
    starts them afresh, and the leader lock keeps another instance from doubling up meanwhile)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.kill_switch = KillSwitch()
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._leaders: dict[str, LeaderLock] = {}
        self._is_leader: dict[str, bool] = {}
        self._leadership: dict[str, str] = {}  # target -> what was last said of its leadership
        self._last_acted: dict[tuple[str, str], float] = {}
        self._busy: set[tuple[str, str]] = set()
        self._in_flight: set[tuple[str, str]] = set()

    # -- passes ---------------------------------------------------------------------------

    def run(
        self,
        config: Config,
        target: Target,
        results: Mapping[str, CheckResult],
        execute: bool | None = None,
        preview: bool = False,
        requested: Mapping[Action, str] | None = None,
        explain: bool = False,
    ) -> list[Decision]:
        """One pass over the target's actions; `execute` overrides the configured dry_run.

        `requested` (action -> why, e.g. an alert) sets actions off whatever their own trigger
        says; every guard, filter, limit, cooldown, the lock and the kill switch still apply.
        A preview decides as if remediation were enabled, in dry-run, without the leader lock;
        `explain` adds a skipped decision, with why, for each action whose condition is not met.
        """
        rc = config.remediation_for(target)
        if preview:
            execute = False
        elif not rc.enabled:
            return []
        # Every pass (triggered or not) renews leadership, so a standby instance says so.
        if not preview and not self._lead(target, rc):
            return []
        assessed = assess(config, target, rc, results)
        triggers = {action: t.why for action, t in assessed.items() if t.met}
        for action, why in (requested or {}).items():
            if action in configured_actions(config, target):
                triggers.setdefault(action, why)
        # `explain` says why an action does not run, too (`drwatch remediate`); uncounted.
        idle = [
            Decision(target.name, action, "skipped", f"not needed: {t.why}")
            for action, t in assessed.items()
            if explain and action not in triggers
        ]
        if not triggers:
            return idle
        # No two passes (a check's, the webhook's) act on one target's system at once.
        systems = {"redis" if action == "redis_bgsave" else "postgres" for action in triggers}
        busy = {(target.name, system) for system in systems}
        with self._lock:
            if busy & self._busy:
                log.debug("remediation pass still running", extra={"target": target.name})
                return []
            self._busy |= busy
        try:
            dry_run = rc.dry_run if execute is None else not execute
            decisions = [
                replace(d, trigger=why)
                for action, why in triggers.items()
                for d in self._act(target, rc, action, dry_run)
            ]
        finally:
            with self._lock:
                self._busy -= busy
        for d in decisions:
            self._record(d, dry_run)
        return idle + decisions

    def run_in_background(
        self,
        config: Config,
        target: Target,
        results: Mapping[str, CheckResult],
        requested: Mapping[Action, str] | None = None,
    ) -> None:
        """For the daemon: a stuck database costs this target's remediation, not a check.

        At most one thread per target and source (each input check, the webhook): a frozen
        server blocks one pass, and later ones are skipped until it returns, never piled up.
        """
        if not config.remediation_for(target).enabled:
            return
        source = (target.name, ",".join(sorted(results)) or "webhook")
        with self._lock:
            if source in self._in_flight:
                log.debug("remediation pass still running", extra={"target": target.name})
                return
            self._in_flight.add(source)
        thread = threading.Thread(
            target=self._run_safely,
            args=(source, config, target, results, requested),
            name=f"remediation-{target.name}",
            daemon=True,
        )
        thread.start()

    def _run_safely(
        self,
        source: tuple[str, str],
        config: Config,
        target: Target,
        results: Mapping[str, CheckResult],
        requested: Mapping[Action, str] | None,
    ) -> None:
        try:
            self.run(config, target, results, requested=requested)
        except Exception:
            log.exception("remediation pass failed", extra={"target": target.name})
        finally:
            with self._lock:
                self._in_flight.discard(source)

    def _act(
        self, target: Target, rc: RemediationConfig, action: Action, dry_run: bool
    ) -> list[Decision]:
        actions = rc.actions
        if action == "redis_bgsave":
            assert target.redis is not None and actions.redis_bgsave is not None
            blocked = self._gate(target.name, action, rc, actions.redis_bgsave.cooldown)
            if blocked is not None:
                return [blocked]
            outcome, reason = remediation_redis.bgsave(target.redis, dry_run)
            decision = Decision(target.name, action, outcome, reason)
            self._started(target.name, decision)
            return [decision]
        opts = (
            actions.terminate_idle_connections
            if action == "terminate_idle_connections"
            else actions.terminate_idle_in_transaction
        )
        assert opts is not None
        return self._terminations(target, rc, action, opts, dry_run)

    def _lead(self, target: Target, rc: RemediationConfig) -> bool:
        if target.postgres is None:
            return True  # nothing to lock on; Redis' own BGSAVE refuses a second save
        with self._lock:
            lock = self._leaders.get(target.name)
            if lock is None or lock.pg != target.postgres or lock.key != rc.lock_key:
                if lock is not None:
                    lock.release()
                lock = self._leaders[target.name] = LeaderLock(target.postgres, rc.lock_key)
        # One line per change of state: taken, held elsewhere, or not known (the lock's server
        # unreachable: nothing is held elsewhere then), never one at every pass.
        state: str
        try:
            leader = lock.hold()
            state = "taken" if leader else "held elsewhere"
        except CheckError as exc:
            leader, state = False, f"not known: the leader lock failed: {exc}"
        if state != self._leadership.get(target.name):
            level = logging.WARNING if state.startswith("not known") else logging.INFO
            log.log(level, "remediation leadership " + state, extra={"target": target.name})
        self._leadership[target.name] = state
        self._is_leader[target.name] = leader
        return leader

    def _terminations(
        self,
        target: Target,
        rc: RemediationConfig,
        action: Action,
        opts: TerminateIdleOptions | TerminateIdleInTransactionOptions,
        dry_run: bool,
    ) -> list[Decision]:
        assert target.postgres is not None
        blocked = self._gate(target.name, action, rc, opts.cooldown)
        if blocked is not None:
            return [blocked]
        try:
            # Read-only like every drwatch session: pg_terminate_backend writes nothing.
            with session(target.postgres) as conn:
                decisions = carry_out(
                    conn, plan_terminations(conn, target.name, action, opts), dry_run
                )
        except CheckError as exc:
            return [Decision(target.name, action, "failed", str(exc))]
        for d in decisions:
            self._started(target.name, d)
        return decisions

    def _gate(
        self, target: str, action: Action, rc: RemediationConfig, cooldown: float
    ) -> Decision | None:
        """A skipped decision when the kill switch or the action's cooldown says no."""
        why = self.kill_switch.why(rc)
        if why is not None:
            return Decision(target, action, "skipped", why)
        last = self._last_acted.get((target, action))
        if last is not None and self.clock() - last < cooldown:
            left = cooldown - (self.clock() - last)
            return Decision(target, action, "skipped", f"cooldown: {left:.0f}s left")
        return None

    def _started(self, target: str, d: Decision) -> None:
        # A dry run starts the cooldown too, so it reports what executing would do, no more.
        if d.outcome in ("executed", "dry_run"):
            self._last_acted[(target, d.action)] = self.clock()

    def _record(self, d: Decision, dry_run: bool) -> None:
        with self._lock:
            key = (d.target, d.action, d.outcome)
            self._counts[key] = self._counts.get(key, 0) + 1
        level = logging.WARNING if d.outcome == "failed" else logging.INFO
        log.log(level, "remediation decision", extra={**d.audit_fields(), "dry_run": dry_run})

    # -- state for /metrics ---------------------------------------------------------------

    def counts(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)

    def is_leader(self, target: str) -> bool | None:
        return self._is_leader.get(target)

    def forget(self, keep: set[str]) -> None:
        """Releases the locks of targets no longer configured with remediation."""
        with self._lock:
            for name in set(self._leaders) - keep:
                self._leaders.pop(name).release()
                self._is_leader.pop(name, None)

    def close(self) -> None:
        self.forget(set())
