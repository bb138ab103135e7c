"""Runs one check under a deadline owned by drwatch, whatever the dependency does.

A frozen server never fires its own statement_timeout and the kernel still ACKs keepalives, so
the work runs in its own thread and the caller stops waiting at the deadline. A run still stuck
is not started again (the next run reports it), so stuck threads never pile up: at most one per
check × target.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from checks.base import Observation, Status
from core.config.schema import Scenario
from core.errors import CheckError, CheckTimeout
from core.metrics import MetricSpec
from core.redact import redact
from exporter.runtime.results import CheckResult, JobKey

log = logging.getLogger("drwatch.runner")


@dataclass(frozen=True)
class Job:
    target: str
    check: str
    interval: float
    timeout: float
    metrics: tuple[MetricSpec, ...]
    scenarios: tuple[Scenario, ...]  # recovery scenarios whose exposure this check measures
    collect: Callable[[], Observation]
    # The check of the same target whose results this one reads (the replica check reads the
    # verdicts the backups check records): it runs after that one, in a one-shot run and each
    # time that one finishes in the daemon, besides its own interval.
    after: str | None = None
    # How a failure to measure rates: an unreachable database is CRITICAL, a broken check UNKNOWN.
    down_status: Callable[[CheckError], Status] = lambda err: (
        Status.CRITICAL if err.reason in ("connect", "timeout") else Status.UNKNOWN
    )

    @property
    def key(self) -> JobKey:
        return (self.target, self.check)


def _waits_on(job: Job) -> str | None:
    """The store a timed-out run was reading, where its check says (job.collect is its run)."""
    check = getattr(job.collect, "__self__", None)
    waits_on = getattr(check, "waits_on", None)
    return waits_on() if callable(waits_on) else None


class DeadlineRunner:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stuck: dict[JobKey, tuple[threading.Thread, float]] = {}
        self._waiting: set[threading.Event] = set()
        self._stopped = False
        self._down_said: dict[JobKey, str] = {}  # job -> why it was last said to be down
        self._said_lock = threading.Lock()

    def stop(self) -> None:
        """Stops waiting for runs in flight: they are abandoned (their threads are daemons)."""
        with self._lock:
            self._stopped = True
            for done in self._waiting:
                done.set()

    def run(self, job: Job) -> CheckResult:
        started = time.monotonic()
        with self._lock:
            stuck = self._stuck.get(job.key)
            if stuck and stuck[0].is_alive():
                waited = time.monotonic() - stuck[1]
                err = CheckError("timeout", f"previous run still stuck after {waited:.0f} s")
                return self._down(job, err, 0.0)
            self._stuck.pop(job.key, None)

        outcome: list[Observation | BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                outcome.append(job.collect())
            except BaseException as exc:  # reported by the waiting side
                outcome.append(exc)
            finally:
                done.set()

        with self._lock:
            if self._stopped:
                return self._down(job, CheckError("timeout", "drwatch is stopping"), 0.0)
            self._waiting.add(done)
        worker = threading.Thread(target=work, name=f"check:{job.target}:{job.check}", daemon=True)
        worker.start()
        done.wait(job.timeout)
        with self._lock:
            self._waiting.discard(done)
        duration = time.monotonic() - started
        if not outcome and self._stopped:
            return self._down(job, CheckError("timeout", "drwatch is stopping"), duration)
        if not outcome:
            with self._lock:
                self._stuck[job.key] = (worker, started)
            return self._down(job, CheckTimeout(job.timeout, _waits_on(job)), duration)
        result = outcome[0]
        if isinstance(result, CheckError):
            return self._down(job, result, duration)
        if isinstance(result, BaseException):
            log.error(
                "check crashed",
                exc_info=(type(result), result, result.__traceback__),
                extra={"target": job.target, "check": job.check},
            )
            err = CheckError("internal", f"internal error: {type(result).__name__}: {result}")
            return self._down(job, err, duration)
        undeclared = {s.name for s in result.samples if s.spec not in job.metrics}
        if undeclared:
            # A bug, caught here so it costs this check's run and never a scrape.
            err = CheckError(
                "internal", f"internal error: undeclared metric(s) {sorted(undeclared)}"
            )
            return self._down(job, err, duration)
        return self._up(job, result, duration)

    def _up(self, job: Job, obs: Observation, duration: float) -> CheckResult:
        with self._said_lock:
            self._down_said.pop(job.key, None)
        reasons = tuple(e.reason for e in obs.errors)
        return CheckResult(
            target=job.target,
            check=job.check,
            status=obs.status,
            summary_text=redact(obs.summary),
            up=not obs.errors,
            duration_seconds=duration,
            finished_at=self._clock(),
            values=obs.values,
            samples=tuple(obs.samples),
            exposures=obs.exposures,
            error_reasons=reasons,
            facts=obs.facts,
            data_timestamp=obs.data_timestamp,
        )

    def _down(self, job: Job, err: CheckError, duration: float) -> CheckResult:
        result = down_result(job, err, duration, self._clock())
        summary = result.summary_text
        # Once per change of why it is down (the daemon says when its status changes): a
        # stopped database is a line per check, not one per check at every interval.
        with self._said_lock:  # _down is called with self._lock held too
            said, self._down_said[job.key] = self._down_said.get(job.key), summary
        if said != summary:
            log.warning(
                "check down: %s",
                summary,
                extra={"target": job.target, "check": job.check, "reason": err.reason},
            )
        return result


def down_result(job: Job, err: CheckError, duration: float, finished_at: float) -> CheckResult:
    """The result of a run that measured nothing: its status by the reason, no exposure."""
    return CheckResult(
        target=job.target,
        check=job.check,
        status=job.down_status(err),
        summary_text=redact(str(err)),
        up=False,
        duration_seconds=duration,
        finished_at=finished_at,
        exposures=dict.fromkeys(job.scenarios),
        error_reasons=(err.reason,),
    )
