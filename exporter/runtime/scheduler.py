"""Runs every job on its own interval (APScheduler), one at a time per job, and a job's followers
(checks that read what it records) right after it.

A fleet's first round is spread: at most `START_RATE` checks start per second (in an order
fixed by their names), and each job keeps the phase it started with, so 200 targets' thousand
checks do not all wake in the same instant every interval, contending with each other and with
scrapes. A small config starts all its checks at once, as before."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from exporter.runtime.results import JobKey
from exporter.runtime.runner import Job

START_RATE = 100.0  # checks started per second at most, in the first round


def _job_id(job: Job) -> str:
    return _job_id_of(job.key)


def _job_id_of(key: JobKey) -> str:
    return f"{key[0]}/{key[1]}"


def first_runs(jobs: tuple[Job, ...], now: datetime) -> dict[str, datetime]:
    """When each job first runs: spread at START_RATE, never later than one interval."""
    order = sorted(jobs, key=lambda job: hashlib.sha256(_job_id(job).encode()).digest())
    return {
        _job_id(job): now + timedelta(seconds=min(i / START_RATE, job.interval * i / len(jobs)))
        for i, job in enumerate(order)
    }


def _followers(jobs: tuple[Job, ...]) -> dict[JobKey, list[JobKey]]:
    found: dict[JobKey, list[JobKey]] = {}
    for job in jobs:
        if job.after is not None:
            found.setdefault((job.target, job.after), []).append(job.key)
    return found


class Scheduler:
    def __init__(self, run: Callable[[Job], None]) -> None:
        self._run = run
        self._scheduler: BackgroundScheduler | None = None
        # The jobs run right after each one (by key, not a scan per run: a fleet has thousands).
        self._followers: dict[JobKey, list[JobKey]] = {}

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def schedule(self, jobs: tuple[Job, ...]) -> None:
        """Replaces the running schedule with `jobs`, each due now or, in a fleet, soon."""
        # A waiting thread per job: one stuck target never delays another's schedule.
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(jobs)))},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone=UTC,
        )
        first = first_runs(jobs, datetime.now(UTC))
        for job in jobs:
            scheduler.add_job(
                self._run_and_follow,
                "interval",
                args=(job,),
                seconds=job.interval,
                next_run_time=first[_job_id(job)],
                id=_job_id(job),
                max_instances=1,
                coalesce=True,
            )
        old, self._scheduler = self._scheduler, scheduler
        self._followers = _followers(jobs)
        if old is not None:
            old.shutdown(wait=False)  # its running checks finish; the store refuses stale keys
        scheduler.start()

    def drop(self, keys: set[JobKey]) -> None:
        """Stops scheduling these jobs (their runs in flight finish)."""
        scheduler = self._scheduler
        self._followers = {
            key: [f for f in followers if f not in keys]
            for key, followers in self._followers.items()
            if key not in keys
        }
        for key in keys:
            if scheduler is not None:
                with suppress(JobLookupError):
                    scheduler.remove_job(_job_id_of(key))

    def _run_and_follow(self, job: Job) -> None:
        self._run(job)
        scheduler = self._scheduler
        for follower in self._followers.get(job.key, ()):
            if scheduler is not None:
                with suppress(JobLookupError):  # a reload replaced the scheduler meanwhile
                    scheduler.modify_job(_job_id_of(follower), next_run_time=datetime.now(UTC))

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
