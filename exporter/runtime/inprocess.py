"""Checks run in the daemon's own process (`--workers 0`): the scheduler and the deadline
runner side by side, each result handed to the daemon as it comes."""

from __future__ import annotations

from collections.abc import Callable

from checks.support import pgpool
from checks.support.verify import terminate_all
from core.config.loading import LoadedConfig
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import DeadlineRunner, Job
from exporter.runtime.scheduler import Scheduler

Deliver = Callable[[Job, CheckResult], None]


class InProcessChecks:
    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self.runner = DeadlineRunner()
        self._scheduler = Scheduler(self._run)

    def _run(self, job: Job) -> None:
        self._deliver(job, self.runner.run(job))

    def schedule(self, loaded: LoadedConfig, jobs: tuple[Job, ...]) -> None:
        pgpool.configure(loaded.config)
        self._scheduler.schedule(jobs)

    def stop(self) -> None:
        """Checks in flight are abandoned (their threads are daemons) and the programs they
        run are killed, so a store that never answers cannot hold a stop for its deadline."""
        self.runner.stop()
        self._scheduler.shutdown()
        terminate_all()
