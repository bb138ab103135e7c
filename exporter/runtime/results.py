"""The latest result of every check × target, shared by /metrics, the status page and the CLI."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from checks.base import Facts, Status, Value
from core.durations import render_ages
from core.errors import CheckError
from core.metrics import Sample

JobKey = tuple[str, str]  # (target, check)


@dataclass(frozen=True)
class CheckResult:
    target: str
    check: str
    status: Status
    summary_text: str  # as the check wrote it: ages as placeholders (core.durations.age_of)
    up: bool
    duration_seconds: float
    finished_at: float  # unix time
    values: dict[str, Value] = field(default_factory=dict)
    samples: tuple[Sample, ...] = ()
    exposures: dict[str, float | None] = field(default_factory=dict)
    error_reasons: tuple[str, ...] = ()
    facts: Facts | None = None  # typed findings other parts act on (remediation)
    # When the data the run judged was read at its source, where earlier than the run (a store
    # listing or catalogue a check cached): the value's age, apart from drwatch's last look.
    data_timestamp: float | None = None
    # The samples as exposition text by family, rendered where the check ran: a worker
    # process sends these instead of the samples (see exporter.workers).
    check_lines: dict[str, str] | None = None

    @property
    def key(self) -> JobKey:
        return (self.target, self.check)

    @property
    def summary(self) -> str:
        """The summary with its ages as they are now, whenever it is shown."""
        return render_ages(self.summary_text)


@dataclass(frozen=True)
class Snapshot:
    results: dict[JobKey, CheckResult]
    last_success: dict[JobKey, float]
    errors: dict[tuple[str, str, str], int]  # (target, check, reason) -> count
    # (target, check, scenario) -> when that check last measured that exposure
    exposure_measured: dict[tuple[str, str, str], float]
    started: float  # when this store (the daemon) started: "never measured" counts from here
    # Changes with every put of the job (store-wide, never reused): what a cache compares.
    versions: dict[JobKey, int] = field(default_factory=dict)


@dataclass(frozen=True)
class JobView:
    """One job's entry: what its own metrics are made of."""

    version: int
    result: CheckResult | None
    last_success: float | None
    errors: tuple[tuple[str, int], ...]  # (reason, count), by reason


class ResultStore:
    """Thread-safe; results of checks no longer configured (after a reload) are refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: frozenset[JobKey] = frozenset()
        self._results: dict[JobKey, CheckResult] = {}
        self._last_success: dict[JobKey, float] = {}
        self._exposure_measured: dict[tuple[str, str, str], float] = {}
        self._started = time.time()
        self._errors: dict[tuple[str, str, str], int] = {}
        self._sequence = itertools.count(1)
        self._versions: dict[JobKey, int] = {}
        self._waiting: set[JobKey] = set()  # configured checks without a result yet

    def configure(self, keys: Iterable[JobKey]) -> None:
        with self._lock:
            self._keys = frozenset(keys)
            for stale in set(self._results) - self._keys:
                del self._results[stale]
                self._last_success.pop(stale, None)
            self._errors = {k: v for k, v in self._errors.items() if (k[0], k[1]) in self._keys}
            for target, check in self._keys:
                for reason in CheckError.REASONS:
                    self._errors.setdefault((target, check, reason), 0)
            self._versions = {
                key: self._versions.get(key) or next(self._sequence) for key in self._keys
            }
            self._waiting = set(self._keys - self._results.keys())  # no result yet

    def put(self, result: CheckResult) -> CheckResult | None:
        """Records `result`; returns the result it replaces (None for the first, or a result
        of a check no longer configured, which is refused)."""
        with self._lock:
            if result.key not in self._keys:
                return None
            previous = self._results.get(result.key)
            self._results[result.key] = result
            self._waiting.discard(result.key)
            if result.up:
                self._last_success[result.key] = result.finished_at
            for scenario, exposure in result.exposures.items():
                if exposure is not None:
                    self._exposure_measured[(result.target, result.check, scenario)] = (
                        result.finished_at
                    )
            for reason in result.error_reasons:
                k = (result.target, result.check, reason)
                self._errors[k] = self._errors.get(k, 0) + 1
            self._versions[result.key] = next(self._sequence)
            return previous

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                dict(self._results),
                dict(self._last_success),
                dict(self._errors),
                dict(self._exposure_measured),
                self._started,
                dict(self._versions),
            )

    def job_view(self, key: JobKey) -> JobView:
        with self._lock:
            target, check = key
            return JobView(
                self._versions.get(key, 0),
                self._results.get(key),
                self._last_success.get(key),
                tuple(
                    (reason, self._errors[(target, check, reason)])
                    for reason in sorted(CheckError.REASONS)
                    if (target, check, reason) in self._errors
                ),
            )

    def complete(self) -> bool:
        """True once every configured check has run at least once."""
        with self._lock:
            return not self._waiting
