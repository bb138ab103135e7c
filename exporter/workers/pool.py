"""The daemon's worker processes: each runs the checks of the targets hashed to it and sends
the results here, where the daemon stores them, serves HTTP, runs drills and writes state.

Why processes: past ~500 targets every check thread and the HTTP server wait on one
interpreter lock, and a scrape waits behind them. Why not a ProcessPoolExecutor: it runs one
call at a time per process and cannot pin a target to one, while a target's checks keep their
state between runs and run concurrently under their own deadlines; so each worker is a
multiprocessing process (forkserver: never forked from this threaded process) with its own
scheduler, and this pool keeps one per slot alive. A worker that dies is started again, and
until its successor's first runs, its targets' checks say why they are down."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from core.config.loading import LoadedConfig
from core.errors import CheckError
from core.sharding import Shard
from exporter.logs import current_settings
from exporter.runtime.results import CheckResult, JobKey
from exporter.runtime.runner import Job, down_result
from exporter.workers import process
from exporter.workers.process import Handover

log = logging.getLogger("drwatch.workers")

Deliver = Callable[[Job, CheckResult], None]
REPLY_TIMEOUT = 60.0  # a worker building a thousand targets' checks answers in a second or two
STOP_TIMEOUT = 5.0  # then the workers still running are killed
RESTART_PAUSE = 1.0  # between two starts of one slot: a worker dying at start is no busy loop


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    # The server imports the checks once; each worker forks from it with them loaded.
    context.set_forkserver_preload([process.__name__])
    return context


@dataclass
class _Slot:
    index: int
    proc: Any  # multiprocessing's Process
    conn: Connection
    started: float
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[int, Future[Any]] = field(default_factory=dict)
    reader: threading.Thread | None = None
    retired: bool = False  # stopped on purpose (the pool shrank or stops): not restarted

    def request(self, request_id: int, *body: object) -> Any:
        """Sends an order and waits for its reply; None if the worker died meanwhile."""
        answer: Future[Any] = Future()
        self.pending[request_id] = answer
        try:
            with self.send_lock:
                self.conn.send((body[0], request_id, *body[1:]))
            return answer.result(REPLY_TIMEOUT)
        except (OSError, FutureTimeout, EOFError):
            return None
        finally:
            self.pending.pop(request_id, None)


def _start_process(proc: Any) -> None:
    """Starts `proc` from a thread of its own: multiprocessing's resource tracker, started with
    the first worker, unblocks SIGINT and SIGTERM in the thread that starts it, and the daemon
    takes those signals with sigwait in its main thread alone (a signal unblocked anywhere else
    would end it by default action)."""
    failed: list[BaseException] = []

    def start() -> None:
        try:
            proc.start()
        except BaseException as exc:  # raised again in the caller
            failed.append(exc)

    starter = threading.Thread(target=start, name="worker-start", daemon=True)
    starter.start()
    starter.join()
    if failed:
        raise failed[0]


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit status"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


class WorkerPool:
    def __init__(self, workers: int, shard: Shard, deliver: Deliver) -> None:
        self.workers = workers
        self._shard = shard
        self._deliver = deliver
        self._context = _context()
        self._lock = threading.RLock()
        self._slots: list[_Slot] = []
        self._loaded: LoadedConfig | None = None
        self._jobs: dict[JobKey, Job] = {}
        self._assignment: dict[str, int] = {}
        self._requests = itertools.count(1)
        self._stopping = threading.Event()
        self._restarts: dict[int, int] = {}

    def count(self) -> int:
        """How many workers run now: --workers, at most one per target."""
        with self._lock:
            return len(self._slots)

    def restarts(self, worker: int) -> int:
        return self._restarts.get(worker, 0)

    def assignment(self) -> dict[str, int]:
        """Which worker runs each target."""
        with self._lock:
            return dict(self._assignment)

    def schedule(self, loaded: LoadedConfig, jobs: tuple[Job, ...]) -> None:
        """Runs `jobs` (the whole of `loaded`'s) across min(workers, targets) processes. A
        target whose worker changes (the count changed) moves with its checks' state; the
        store keeps its last results meanwhile, so a scrape sees no gap."""
        names = [t.name for t in loaded.config.targets]
        count = min(self.workers, len(names))
        assignment = {name: self._shard.worker_of(name, count) for name in names}
        with self._lock:
            if self._stopping.is_set():
                return
            self._jobs = {job.key: job for job in jobs}
            handover: Handover = {}
            for slot in self._slots:
                keep = frozenset(n for n, i in assignment.items() if i == slot.index)
                handover.update(slot.request(next(self._requests), "release", keep) or {})
            self._stop_slots(self._slots[count:])
            self._slots = self._slots[:count] + [
                self._start(i) for i in range(len(self._slots), count)
            ]
            moved = sum(1 for n, i in assignment.items() if self._assignment.get(n, i) != i)
            if moved:
                log.info("targets moved between workers", extra={"moved": moved, "workers": count})
            self._loaded, self._assignment = loaded, assignment
            for slot in self._slots:
                self._configure(slot, handover)

    def _configure(self, slot: _Slot, handover: Handover) -> None:
        mine = frozenset(n for n, i in self._assignment.items() if i == slot.index)
        moved = {key: state for key, state in handover.items() if key[0] in mine}
        slot.request(
            next(self._requests), "configure", self._loaded, mine, moved, len(self._slots)
        )

    def _start(self, index: int) -> _Slot:
        ours, theirs = self._context.Pipe()
        proc = self._context.Process(
            target=process.serve,
            args=(theirs, index, *current_settings()),
            name=f"drwatch-worker-{index}",
            daemon=False,  # stopped by stop(), which waits for it and kills what is left
        )
        _start_process(proc)
        theirs.close()  # the worker's end lives in the worker: its exit ends our reads
        slot = _Slot(index, proc, ours, time.monotonic())
        slot.reader = threading.Thread(
            target=self._read, args=(slot,), name=f"worker-reader-{index}", daemon=True
        )
        slot.reader.start()
        log.info("worker started", extra={"worker": index, "pid": proc.pid})
        return slot

    def _read(self, slot: _Slot) -> None:
        while True:
            try:
                message = slot.conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "result":
                result: CheckResult = message[1]
                job = self._jobs.get(result.key)
                if job is not None:  # else a check a reload removed
                    self._deliver(job, result)
            else:  # ("reply", request id, body)
                answer = slot.pending.get(message[1])
                if answer is not None:
                    answer.set_result(message[2])
        for answer in list(slot.pending.values()):
            answer.set_exception(EOFError("worker gone"))
        self._lost(slot)

    def _lost(self, slot: _Slot) -> None:
        slot.proc.join(STOP_TIMEOUT)
        slot.conn.close()
        if slot.retired or self._stopping.is_set():
            return
        how = _how(slot.proc.exitcode)
        log.error(
            "worker died; starting it again",
            extra={"worker": slot.index, "pid": slot.proc.pid, "how": how},
        )
        err = CheckError(
            "internal",
            f"drwatch's worker process {slot.index} died ({how}); it is being started again "
            "and runs this check at once",
        )
        now = time.time()
        for job in list(self._jobs.values()):
            if self._assignment.get(job.target) == slot.index:
                self._deliver(job, down_result(job, err, 0.0, now))
        self._stopping.wait(max(0.0, slot.started + RESTART_PAUSE - time.monotonic()))
        with self._lock:
            if self._stopping.is_set() or slot not in self._slots:
                return  # stopped, or a reload already replaced this slot
            self._restarts[slot.index] = self._restarts.get(slot.index, 0) + 1
            fresh = self._start(slot.index)
            self._slots[self._slots.index(slot)] = fresh
            self._configure(fresh, {})

    def stop(self) -> None:
        """Every worker stops its checks and exits within STOP_TIMEOUT, or is killed."""
        self._stopping.set()
        with self._lock:
            self._stop_slots(self._slots)
            self._slots = []

    def _stop_slots(self, slots: list[_Slot]) -> None:
        for slot in slots:
            slot.retired = True
            with slot.send_lock, suppress(OSError):  # OSError: already gone
                slot.conn.send(("stop",))
        deadline = time.monotonic() + STOP_TIMEOUT
        for slot in slots:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.exitcode is None:
                log.warning("worker did not stop in time: killed", extra={"worker": slot.index})
                slot.proc.kill()
                slot.proc.join(STOP_TIMEOUT)
