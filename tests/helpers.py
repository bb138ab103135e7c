"""Shared by the tests: run checks the way the daemon does, wait with deadlines."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from checks.base import Observation
from core.config.loading import LoadedConfig
from exporter.runtime.jobs import build_jobs
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import DeadlineRunner, Job


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


def drwatch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The `drwatch` command as users run it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A loopback HTTP server for `handler`, yielding its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sample(result: CheckResult | Observation, name: str, /, **labels: str) -> float | None:
    want = tuple(sorted(labels.items()))
    for s in result.samples:
        if s.name == name and (not labels or s.labels == want):
            return s.value
    return None
