"""Every configured check once, synchronously: what `drwatch check` and `drwatch remediate` run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from core.config.loading import LoadedConfig
from exporter.runtime.jobs import build_jobs
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import DeadlineRunner, Job


def run_once(
    loaded: LoadedConfig,
    target: str | None = None,
    checks: frozenset[str] | None = None,
    deadline: float | None = None,
) -> tuple[list[Job], list[CheckResult]]:
    """`deadline` (monotonic): the whole run's; a check started late gets what is left of it."""
    jobs, _ = build_jobs(loaded.config)
    if target is not None:
        jobs = [j for j in jobs if j.target == target]
    if checks is not None:
        jobs = [j for j in jobs if j.check in checks]
    runner = DeadlineRunner()
    by_key = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
        # A check that reads what another records runs after it.
        for batch in ([j for j in jobs if j.after is None], [j for j in jobs if j.after]):
            runs = pool.map(lambda job: runner.run(_within(job, deadline)), batch)
            by_key.update({r.key: r for r in runs})
    return jobs, [by_key[j.key] for j in jobs]


def _within(job: Job, deadline: float | None) -> Job:
    if deadline is None:
        return job
    left = max(0.1, deadline - time.monotonic())
    return job if job.timeout <= left else replace(job, timeout=left)
