"""A worker process: runs the checks of the targets the daemon gives it, each on its interval
under the deadline runner, and sends every result (its samples already rendered as text) back.

It takes orders from its pipe only: `configure` (the config and its targets, with the state of
checks moving in from another worker), `release` (keep these targets; hand over the others'
state), `stop`. Signals are the daemon's to act on and stay blocked here: systemd sends SIGTERM
to every process of the unit at once, and a worker ending on its own would look, for the moment
before the daemon's own SIGTERM is taken, like a worker that died (restarted, its checks marked
down); the daemon stops its workers itself, and kills one that does not stop. A daemon that is
gone (the pipe ends) ends it too: a worker never outlives its daemon."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import time
from contextlib import suppress
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from checks.support import pgpool
from checks.support.verify import terminate_all
from core.config.loading import LoadedConfig
from core.errors import CheckError
from core.redact import redact
from exporter.logs import setup_logging
from exporter.runtime.jobs import Instances, build_jobs
from exporter.runtime.results import JobKey
from exporter.runtime.runner import DeadlineRunner, Job, down_result
from exporter.runtime.scheduler import Scheduler
from exporter.web.metrics import check_lines

# A check's state on its way to another worker: (its class, the state).
Handover = dict[JobKey, tuple[str, Any]]
_BLOCKED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}


def serve(conn: Connection, index: int, log_level: str, log_format: str) -> None:
    """The worker's whole life (multiprocessing's target)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)  # before any thread starts
    setup_logging(log_level, log_format)
    Worker(conn, index).serve()


class Worker:
    def __init__(self, conn: Connection, index: int) -> None:
        self._conn = conn
        self.index = index
        self._send_lock = threading.Lock()
        self._runner = DeadlineRunner()
        self._scheduler = Scheduler(self._run)
        self._instances: Instances = {}

    def serve(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break  # the daemon is gone
            if message[0] == "stop":
                break
            kind, request, *body = message
            reply: object = None
            if kind == "configure":
                self._configure(*body)
            elif kind == "release":
                reply = self._release(*body)
            self._send(("reply", request, reply))
        self._exit()

    def _exit(self) -> None:
        """Stops within seconds whatever is running, as the daemon's own stop does."""
        self._runner.stop()
        self._scheduler.shutdown()
        terminate_all()
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)  # abandoned check threads are not waited for

    def _configure(
        self, loaded: LoadedConfig, targets: frozenset[str], moved: Handover, workers: int
    ) -> None:
        redact.set_secrets(loaded.secrets)
        pgpool.configure(loaded.config, workers)  # each server's budget, split among workers
        config = loaded.config.model_copy(
            update={"targets": [t for t in loaded.config.targets if t.name in targets]}
        )
        jobs, self._instances = build_jobs(config, self._instances)
        for key, (kind, state) in moved.items():
            check = self._instances.get(key)
            if check is not None and type(check).__qualname__ == kind:
                check.state = state
        self._scheduler.schedule(tuple(jobs))

    def _release(self, keep: frozenset[str]) -> Handover:
        """Stops running the targets not in `keep`; returns their checks' state."""
        leaving = [key for key in self._instances if key[0] not in keep]
        handover: Handover = {}
        for key in leaving:
            check = self._instances.pop(key)
            try:
                pickle.dumps(check.state)
            except Exception:  # noqa: S112 - such a state stays behind; its successor starts anew
                continue
            handover[key] = (type(check).__qualname__, check.state)
        self._scheduler.drop(set(leaving))
        return handover

    def _run(self, job: Job) -> None:
        result = self._runner.run(job)
        sent = replace(result, samples=(), check_lines=check_lines(result))
        try:
            self._send(("result", sent))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            # Its facts or values do not travel: the run counts as drwatch's own failure.
            err = CheckError("internal", f"internal error: result not transferable: {exc}")
            self._send(("result", down_result(job, err, result.duration_seconds, time.time())))

    def _send(self, message: tuple[object, ...]) -> None:
        # OSError: the daemon is gone; serve() sees the pipe end and stops.
        with self._send_lock, suppress(OSError):
            self._conn.send(message)
