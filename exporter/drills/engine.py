"""Runs drills: each scenario on its own cron schedule in the daemon, at once for `drwatch drill`.

Drills run in threads of their own, `drills.max_concurrent` at a time across targets (one by
default): a drill never delays a check or a scrape. A scheduled drill that finds no room within
`drills.wait` is deferred, not failed. The last result and the last success of each target and
scenario survive restarts (`<state_dir>/drills.json`), so a restart does not make a drill look
overdue, nor hide one; every drill's record goes to the history reports are made from.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC
from pathlib import Path

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import BaseModel, TypeAdapter, model_validator

from core.config.drills import cron_trigger
from core.config.schema import Config, Target
from core.journal import Journal
from core.statefile import read_state, write_state
from exporter.drills import (
    cross_region,
    elasticache_restore,
    full_restore,
    pitr,
    rds_new_instance,
    rds_restore,
    redis,
)
from exporter.drills.aws_lifecycle import delete_all
from exporter.drills.aws_reaper import reap
from exporter.drills.capacity import CAPACITY, DrillDeferred
from exporter.drills.forecast import forecast
from exporter.drills.heartbeat import HeartbeatWriter, schedule_heartbeats
from exporter.drills.history import DrillRecord, drill_history, record_of
from exporter.drills.isolation import announce, client_only
from exporter.drills.leftovers import NotOurs, remove_leftovers
from exporter.drills.result import DrillResult, could_not_run, deferred
from exporter.drills.scratch import close_all, scratch_base
from exporter.drills.staging import drop_staging_leftovers

log = logging.getLogger("drwatch.drills")

Key = tuple[str, str]  # (target, scenario)
START_DELAY = 10.0  # `run_at_start`: after the first round of checks, not in its way
RUNNERS: dict[str, Callable[[Config, Target, float], DrillResult]] = {
    full_restore.SCENARIO: rds_new_instance.run_full_restore,
    pitr.SCENARIO: pitr.run,
    cross_region.SCENARIO: cross_region.run,
    redis.SCENARIO: redis.run,
    rds_restore.PITR: rds_restore.run_pitr,
    rds_restore.SNAPSHOT: rds_restore.run_snapshot,
    elasticache_restore.SCENARIO: elasticache_restore.run,
}
OUTCOMES = ("passed", "failed", "deferred")


def overdue(
    passed: dict[Key, DrillResult],
    expected: dict[Key, float],
    key: Key,
    max_age: float,
    now: float,
) -> bool | None:
    """Whether no drill passed within `max_age`, counted from the last pass or, before one,
    from when drwatch began expecting the drill (None: it does not expect it yet)."""
    since = passed[key].started_at if key in passed else expected.get(key)
    return None if since is None else now - since > max_age


class DrillEngine:
    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self.last: dict[Key, DrillResult] = {}  # deferred ones aside: they judged nothing
        self.last_success: dict[Key, DrillResult] = {}
        self.last_deferred: dict[Key, DrillResult] = {}
        self.expected_since: dict[Key, float] = {}  # when a drill was first configured
        self.counts: dict[tuple[str, str, str], int] = {}  # (target, scenario, outcome)
        self.running: set[Key] = set()
        self.history: Journal[DrillRecord] | None = None
        self.forecasts: dict[Key, dict[str, float]] = {}  # horizon -> forecast RTO seconds
        # target -> whether its last drill of the recovery window's start recovered it
        self.window_start_recovered: dict[str, bool] = {}
        # target -> the isolation its restores run in (None: none its settings allow)
        self.isolation: dict[str, str | None] = {}
        # (target, postgres|redis) -> its tick's writer
        self.heartbeats: dict[tuple[str, str], HeartbeatWriter] = {}
        self._state_file: Path | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._history_seen: tuple[int, int] | None = None  # (size, mtime_ns) last read

    def configure(self, config: Config) -> None:
        """Takes a (re)loaded config: the remembered results, and the schedule if running."""
        CAPACITY.configure(config.drills.max_concurrent, config.drills.disk_budget)
        self._isolation(config)
        self.history = drill_history(config.state_dir, config.drills)
        self._forecast(None)
        state = Path(config.state_dir) / "drills.json"
        if state != self._state_file:
            self._state_file = state
            self._load()
        now = time.time()
        keys = {(t.name, s) for t in config.targets if t.drills for s in t.drill_scenarios()}
        with self._state_lock:
            added = keys - self.expected_since.keys()
            self.expected_since = {k: self.expected_since.get(k, now) for k in keys}
        if added:
            self._save()  # a restart before the first drill must not restart the overdue clock
        if self._scheduler is not None:
            self.schedule(config)

    def _isolation(self, config: Config) -> None:
        """Which isolation each target's restores get, said once per distinct setting."""
        said: dict[tuple[str, str | None, bool], str | None] = {}
        found: dict[str, str | None] = {}
        for target in config.targets:
            if target.drills and target.drill_scenarios():
                scratch = target.drills.scratch
                clients = client_only(scratch, target.drill_scenarios())
                key = (scratch.isolation, scratch.user, clients)
                if key not in said:
                    isolated = announce(scratch, clients)
                    said[key] = isolated.mode if isolated else None
                found[target.name] = said[key]
        self.isolation = found

    def schedule(self, config: Config) -> None:
        scheduler = BackgroundScheduler(timezone=UTC)
        for target in config.targets:
            drills = target.drills
            for scenario in target.drill_scenarios():
                assert drills is not None
                scheduler.add_job(
                    self._run_safely,
                    cron_trigger(drills.schedule_of(scenario), drills.timezone),
                    args=(config, target, scenario),
                    id=f"{target.name}/{scenario}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=3600,
                )
        scheduler.add_job(
            reap, "interval", hours=1, args=(config,), id="aws-reaper", max_instances=1,
            coalesce=True,
        )  # fmt: skip
        # A drill run by hand (`drwatch drill`) is the daemon's state within a minute.
        scheduler.add_job(
            self.refresh_from_history, "interval", seconds=30, id="drill-history",
            max_instances=1, coalesce=True,
        )  # fmt: skip
        schedule_heartbeats(scheduler, config, self.heartbeats)
        old, self._scheduler = self._scheduler, scheduler
        if old is not None:
            old.shutdown(wait=False)
        scheduler.start()

    def clean_leftovers(self, config: Config) -> None:
        """What drills of a killed drwatch left (scratch directories and their servers, staging
        databases): removed, where drwatch proves it made them. At every start, the daemon's
        and the one-shot `drwatch drill`'s."""
        drills = [t.drills for t in config.targets if t.drills]
        try:
            for base in {scratch_base(d.scratch, config.state_dir) for d in drills}:
                for left in remove_leftovers(base, config.state_dir):
                    log.warning("removed a drill left behind by an earlier drwatch (killed, or "
                                "unable to remove it then): %s", left)  # fmt: skip
        except (OSError, NotOurs) as exc:  # state_dir read-only or full: say so, go on
            log.warning("drill leftovers not checked: %s", exc)
        for dsn in {d.scratch.dsn for d in drills if d.scratch.dsn}:
            try:
                for name in drop_staging_leftovers(dsn, config.state_dir):
                    log.warning("dropped a staging drill database left behind: %s", name)
            except (psycopg.Error, OSError, NotOurs) as exc:
                log.warning("staging leftovers not checked: %s", str(exc).strip()[:200])

    def start(self, config: Config) -> None:
        self.clean_leftovers(config)
        reap(config)  # AWS drills' leftovers: at start, then hourly (schedule)
        self.schedule(config)
        first = [t for t in config.targets if t.drills and t.drills.run_at_start]
        if first:  # `run_at_start`: a first measured RTO without waiting for the schedule
            timer = threading.Timer(START_DELAY, self._run_all, args=(config, first))
            timer.daemon = True
            timer.start()

    def next_run(self, key: Key) -> float | None:
        """When the scheduler runs the drill next (None: not scheduled here)."""
        job = self._scheduler.get_job(f"{key[0]}/{key[1]}") if self._scheduler else None
        when = getattr(job, "next_run_time", None)
        return when.timestamp() if when is not None else None

    def _run_all(self, config: Config, targets: list[Target]) -> None:
        for target in targets:
            for scenario in target.drill_scenarios():
                self._run_safely(config, target, scenario)

    def _run_safely(self, config: Config, target: Target, scenario: str) -> None:
        try:
            self.run(config, target, scenario, wait=config.drills.wait)
        except Exception:  # a bug in a drill must not end the scheduler's thread
            log.exception("drill failed to run", extra={"target": target.name})

    def run(
        self, config: Config, target: Target, scenario: str | None = None, wait: float | None = None
    ) -> list[DrillResult]:
        """The target's drills (or one), one after the other, each once a slot is free; a
        drill that gets none within `wait` seconds (None: waits) is deferred."""
        if target.drills is None:
            return []
        results = []
        for name in target.drill_scenarios():
            if scenario in (None, name):
                result = self._run_one(config, target, name, wait)
                self._record(result, config.objective(target, name).rto)
                results.append(result)
        return results

    def _run_one(
        self, config: Config, target: Target, name: str, wait: float | None
    ) -> DrillResult:
        assert target.drills is not None
        key = (target.name, name)
        try:
            CAPACITY.acquire(wait)
        except DrillDeferred as exc:
            return deferred(target.name, name, str(exc))
        with self._state_lock:
            self.running.add(key)
        deadline = time.monotonic() + target.drills.timeout
        started = time.time()
        try:
            return RUNNERS[name](config, target, deadline)
        except DrillDeferred as exc:  # the disk budget, found once the backup's size is known
            return deferred(target.name, name, str(exc))
        except Exception as exc:  # whatever broke, the drill failed: say so, by name
            log.exception("drill could not run", extra={"target": target.name})
            return could_not_run(target.name, name, started, exc)
        finally:
            with self._state_lock:
                self.running.discard(key)
            CAPACITY.release()

    def _record(self, result: DrillResult, rto_objective: float | None) -> None:
        key = (result.target, result.scenario)
        with self._state_lock:
            if result.deferred:
                self.last_deferred[key] = result
            else:
                self.last[key] = result
            if result.ok:
                self.last_success[key] = result
            count = (*key, result.outcome)
            self.counts[count] = self.counts.get(count, 0) + 1
        if self.history is not None:
            self.history.append([record_of(result, rto_objective)])
            self._forecast(key)
        level = logging.INFO if result.ok else logging.WARNING
        log.log(
            level,
            f"drill {result.outcome}",
            extra={
                "target": result.target,
                "scenario": result.scenario,
                "duration_seconds": round(result.duration_seconds, 3),
                "summary": result.summary,
            },
        )
        self._save()

    def refresh_from_history(self) -> None:
        """The history again when it changed since last read (a `drwatch drill` run by hand
        appends to it): its newer records become the daemon's drill state, whoever wrote them,
        so the runbook's fix for an overdue drill (run one now) clears it."""
        assert self.history is not None
        try:
            stat = self.history.path.stat()
        except OSError:
            return
        if (stat.st_size, stat.st_mtime_ns) != self._history_seen:
            self._forecast(None)

    def _adopt(self, records: list[DrillRecord]) -> None:
        """Records newer than the state drwatch holds, as that state (under the lock)."""
        for record in records:
            key = (record.target, record.scenario)
            known = self.last.get(key)
            if record.outcome == "deferred" or (known and known.started_at >= record.started_at):
                continue
            result = DrillResult(
                record.target, record.scenario, record.started_at,
                ok=record.outcome == "passed", summary=record.summary,
                duration_seconds=record.duration_seconds, point=record.point,
                recovered_to=record.recovered_to, phases=dict(record.phases),
                values={**record.backup, **record.path},
            )  # fmt: skip
            self.last[key] = result
            if result.ok:
                self.last_success[key] = result

    def _forecast(self, only: Key | None) -> None:
        """The RTO forecasts from the history: every key's (at configure), or one's; and the
        drill state from records drwatch did not make itself."""
        assert self.history is not None
        by_key: dict[Key, list[DrillRecord]] = {}
        try:
            stat = self.history.path.stat()
            seen: tuple[int, int] | None = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            seen = None
        records = self.history.read()
        for record in records:
            by_key.setdefault((record.target, record.scenario), []).append(record)
        now = time.time()
        found = {k: forecast(v, now) for k, v in by_key.items() if only in (None, k)}
        starts = {
            r.target: r.outcome == "passed"
            for records in by_key.values() for r in records if r.point == "oldest"
            and r.outcome != "deferred"
        }  # fmt: skip
        with self._state_lock:
            if only is None:
                self.forecasts = found
            else:
                self.forecasts[only] = found.get(only, {})
            self.window_start_recovered.update(starts)
            self._adopt(records)
            self._history_seen = seen

    def snapshot(self) -> tuple[dict[Key, DrillResult], dict[Key, DrillResult], dict[Key, float]]:
        with self._state_lock:
            return dict(self.last), dict(self.last_success), dict(self.expected_since)

    def running_now(self) -> set[Key]:
        """The drills running (a copy: drill threads change the set)."""
        with self._state_lock:
            return set(self.running)

    def deferrals(self) -> tuple[dict[Key, DrillResult], dict[tuple[str, str, str], int]]:
        with self._state_lock:
            return dict(self.last_deferred), dict(self.counts)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        close_all()  # the scratch clusters of a drill in flight: its restore fails at once
        for name in delete_all():  # AWS drills' resources in flight: deleted, not left
            log.warning("deleted AWS drill resource %s: drwatch is stopping", name)

    def _load(self) -> None:
        assert self._state_file is not None
        doc = read_state(self._state_file, _STATE)
        if doc is None:
            return
        with self._state_lock:
            for results, slot in ((doc.last, self.last), (doc.last_success, self.last_success)):
                for result in results:
                    slot[(result.target, result.scenario)] = result
            for target, scenario, since in doc.expected_since:
                self.expected_since[(target, scenario)] = since
            for target, scenario, outcome, n in doc.counts:
                if outcome in OUTCOMES and n >= 0:
                    self.counts[(target, scenario, outcome)] = n

    def _save(self) -> None:
        if self._state_file is None:
            return
        with self._state_lock:
            doc = {
                "last": [asdict(r) for r in self.last.values()],
                "last_success": [asdict(r) for r in self.last_success.values()],
                "expected_since": [[*key, since] for key, since in self.expected_since.items()],
                "counts": [[*key, n] for key, n in self.counts.items()],
            }
        write_state(self._state_file, json.dumps(doc))  # else kept in memory, and said


class _DrillState(BaseModel):
    """drills.json: fields a newer or older drwatch added are ignored, a wrong shape set aside,
    and so are values no drill can have (a start in the future or before 2000, a negative or
    year-long duration): a hand-made pass is not a pass."""

    last: list[DrillResult] = []
    last_success: list[DrillResult] = []
    expected_since: list[tuple[str, str, float]] = []
    counts: list[tuple[str, str, str, int]] = []

    @model_validator(mode="after")
    def _possible(self) -> _DrillState:
        latest = time.time() + 86400.0
        for result in (*self.last, *self.last_success):
            when = f"{result.target}/{result.scenario}"
            if not EPOCH_2000 <= result.started_at <= latest:
                raise ValueError(f"{when}: started_at {result.started_at} is not a past time")
            seconds = [result.duration_seconds, *result.phases.values()]
            if any(not 0 <= value <= YEAR for value in seconds):
                raise ValueError(f"{when}: a duration outside 0 s to a year")
        if any(not EPOCH_2000 <= since <= latest for *_, since in self.expected_since):
            raise ValueError("expected_since: not a past time")
        return self


EPOCH_2000 = 946684800.0
YEAR = 366 * 86400.0


_STATE = TypeAdapter(_DrillState)
