"""Shared by the tests: run checks the way the daemon does, wait with deadlines."""

from __future__ import annotations

from checks.base import Observation
from exporter.config import LoadedConfig
from exporter.jobs import build_jobs
from exporter.results import CheckResult
from exporter.runner import DeadlineRunner, Job


class CheckHarness:
    """Jobs built once (so checks keep their state across runs), run through the real runner."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.jobs, _ = build_jobs(loaded.config)
        self.runner = DeadlineRunner()

    def job(self, check: str, target: str | None = None) -> Job:
        for job in self.jobs:
            if job.check == check and (target is None or job.target == target):
                return job
        raise KeyError(check)

    def run(self, check: str, target: str | None = None) -> CheckResult:
        return self.runner.run(self.job(check, target))


def sample(result: CheckResult | Observation, name: str, /, **labels: str) -> float | None:
    want = tuple(sorted(labels.items()))
    for s in result.samples:
        if s.name == name and (not labels or s.labels == want):
            return s.value
    return None
