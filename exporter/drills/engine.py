"""Runs drills: on their cron schedules in the daemon, at once for `drwatch drill`.

One drill at a time per process, in a thread of its own: a drill never delays a check or a
scrape. The last result and the last success of each target and scenario survive restarts
(`<state_dir>/drills.json`), so a restart does not make a drill look overdue, nor hide one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC
from pathlib import Path

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import BaseModel, TypeAdapter

from core.config.drills import cron_trigger
from core.config.schema import Config, Target
from core.statefile import read_state
from exporter.drills import full_restore, pitr, redis
from exporter.drills.leftovers import remove_leftovers
from exporter.drills.result import DrillResult, could_not_run
from exporter.drills.scratch import close_all, scratch_base
from exporter.drills.staging import drop_staging_leftovers

log = logging.getLogger("drwatch.drills")

Key = tuple[str, str]  # (target, scenario)
START_DELAY = 10.0  # `run_at_start`: after the first round of checks, not in its way
RUNNERS: dict[str, Callable[[Config, Target, float], DrillResult]] = {
    full_restore.SCENARIO: full_restore.run,
    pitr.SCENARIO: pitr.run,
    redis.SCENARIO: redis.run,
}


class DrillEngine:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # one drill at a time
        self._state_lock = threading.Lock()
        self.last: dict[Key, DrillResult] = {}
        self.last_success: dict[Key, DrillResult] = {}
        self.expected_since: dict[Key, float] = {}  # when a drill was first configured
        self.running: Key | None = None
        self._state_file: Path | None = None
        self._scheduler: BackgroundScheduler | None = None

    def configure(self, config: Config) -> None:
        """Takes a (re)loaded config: the remembered results, and the schedule if running."""
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

    def schedule(self, config: Config) -> None:
        scheduler = BackgroundScheduler(timezone=UTC)
        for target in config.targets:
            if target.drills is None:
                continue
            trigger = cron_trigger(target.drills.schedule, target.drills.timezone)
            scheduler.add_job(
                self._run_safely,
                trigger,
                args=(config, target),
                id=target.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        old, self._scheduler = self._scheduler, scheduler
        if old is not None:
            old.shutdown(wait=False)
        scheduler.start()

    def clean_leftovers(self, config: Config) -> None:
        """What drills of a killed drwatch left (scratch directories and their servers, staging
        databases): removed, where drwatch proves it made them. At every start, the daemon's
        and the one-shot `drwatch drill`'s."""
        drills = [t.drills for t in config.targets if t.drills]
        for base in {scratch_base(d.scratch, config.state_dir) for d in drills}:
            for left in remove_leftovers(base, config.state_dir):
                log.warning("removed a drill left behind by a drwatch that was killed: %s", left)
        for dsn in {d.scratch.dsn for d in drills if d.scratch.dsn}:
            try:
                for name in drop_staging_leftovers(dsn, config.state_dir):
                    log.warning("dropped a staging drill database left behind: %s", name)
            except psycopg.Error as exc:
                log.warning("staging leftovers not checked: %s", str(exc).strip()[:200])

    def start(self, config: Config) -> None:
        self.clean_leftovers(config)
        self.schedule(config)
        first = [t for t in config.targets if t.drills and t.drills.run_at_start]
        if first:  # `run_at_start`: a first measured RTO without waiting for the schedule
            timer = threading.Timer(START_DELAY, self._run_all, args=(config, first))
            timer.daemon = True
            timer.start()

    def _run_all(self, config: Config, targets: list[Target]) -> None:
        for target in targets:
            self._run_safely(config, target)

    def _run_safely(self, config: Config, target: Target) -> None:
        try:
            self.run(config, target)
        except Exception:  # a bug in a drill must not end the scheduler's thread
            log.exception("drill failed to run", extra={"target": target.name})

    def run(self, config: Config, target: Target, scenario: str | None = None) -> list[DrillResult]:
        """The target's drills (or one), one after the other; waits for any drill running."""
        if target.drills is None:
            return []
        results = []
        for name in target.drill_scenarios():
            if scenario not in (None, name):
                continue
            with self._lock:
                self.running = (target.name, name)
                deadline = time.monotonic() + target.drills.timeout
                started = time.time()
                try:
                    result = RUNNERS[name](config, target, deadline)
                except Exception as exc:  # whatever broke, the drill failed: say so, by name
                    log.exception("drill could not run", extra={"target": target.name})
                    result = could_not_run(target.name, name, started, exc)
                finally:
                    self.running = None
            self._record(result)
            results.append(result)
        return results

    def _record(self, result: DrillResult) -> None:
        key = (result.target, result.scenario)
        with self._state_lock:
            self.last[key] = result
            if result.ok:
                self.last_success[key] = result
        level = logging.INFO if result.ok else logging.WARNING
        log.log(
            level,
            "drill " + ("passed" if result.ok else "failed"),
            extra={
                "target": result.target,
                "scenario": result.scenario,
                "duration_seconds": round(result.duration_seconds, 3),
                "summary": result.summary,
            },
        )
        self._save()

    def snapshot(self) -> tuple[dict[Key, DrillResult], dict[Key, DrillResult], dict[Key, float]]:
        with self._state_lock:
            return dict(self.last), dict(self.last_success), dict(self.expected_since)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        close_all()  # the scratch clusters of a drill in flight: its restore fails at once

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

    def _save(self) -> None:
        if self._state_file is None:
            return
        with self._state_lock:
            doc = {
                "last": [asdict(r) for r in self.last.values()],
                "last_success": [asdict(r) for r in self.last_success.values()],
                "expected_since": [[*key, since] for key, since in self.expected_since.items()],
            }
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self._state_file)
        except OSError as exc:
            log.warning("cannot save drill state %s: %s", self._state_file, exc.strerror)


class _DrillState(BaseModel):
    """drills.json: fields a newer or older drwatch added are ignored, a wrong shape set aside."""

    last: list[DrillResult] = []
    last_success: list[DrillResult] = []
    expected_since: list[tuple[str, str, float]] = []


_STATE = TypeAdapter(_DrillState)
