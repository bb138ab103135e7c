"""drwatch's own per-minute record of each scenario's RPO exposure against its objective
(`<state_dir>/exposure-record.jsonl`): where no Prometheus keeps the history, the 30-day
compliance of `drwatch check --format json` and the status page, and the longest exposure of an
evidence report, come from here.

A minute is within objective when the exposure was measured and at most the RPO; a minute the
exposure was unknown (its check down) counts against the objective, as an unproven one; a
minute drwatch did not run is not in the record, and a report says how much is missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from core.config.schema import Config
from core.journal import Journal
from exporter.runtime.exposures import combine
from exporter.runtime.results import CheckResult, JobKey
from exporter.runtime.runner import Job

MINUTE = 60.0
COMPLIANCE_WINDOW = 30 * 86400.0
# About 200 days of eight scenarios a minute; the oldest minutes go first.
MAX_BYTES = 64 << 20


class ExposureSample(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    t: float  # the minute, unix time
    # "target/scenario" -> [exposure seconds or None (unknown), RPO seconds or None (no objective)]
    x: dict[str, tuple[float | None, float | None]]


@dataclass
class Compliance:
    minutes: int = 0  # minutes recorded
    within: int = 0  # minutes measured and within the RPO
    unknown: int = 0  # minutes the exposure could not be measured
    worst_seconds: float | None = None  # the longest exposure measured
    worst_at: float | None = None
    first: float | None = None  # the record's first minute in the window

    @property
    def ratio(self) -> float | None:
        return self.within / self.minutes if self.minutes else None

    def as_json(self) -> dict[str, object]:
        return {
            "ratio": None if self.ratio is None else round(self.ratio, 6),
            "minutes_recorded": self.minutes,
            "minutes_within_objective": self.within,
            "minutes_unknown": self.unknown,
            "worst_exposure_seconds": self.worst_seconds,
            "worst_exposure_at": self.worst_at,
            "recorded_since": self.first,
        }


_SCHEMA = TypeAdapter(ExposureSample)


class ExposureRecord:
    def __init__(self, state_dir: str, keep: float, max_bytes: int = MAX_BYTES) -> None:
        path = Path(state_dir) / "exposure-record.jsonl"
        self.journal = Journal(path, _SCHEMA, lambda s: s.t, keep, max_bytes)
        self._cache: tuple[float, float, dict[str, Compliance]] | None = None
        self._lock = threading.Lock()

    def sample(
        self, config: Config, jobs: Iterable[Job], results: dict[JobKey, CheckResult], now: float
    ) -> None:
        values = {
            f"{target}/{scenario}": (
                exposure,
                config.objective(config.target(target), scenario).rpo,
            )
            for (target, scenario), exposure in combine(jobs, results).items()
        }
        if values:
            self.journal.append([ExposureSample(t=now - now % MINUTE, x=values)])

    def compliance(self, since: float, now: float | None = None) -> dict[str, Compliance]:
        """Per "target/scenario", from `since`; computed at most once a minute per window."""
        now = time.time() if now is None else now
        with self._lock:
            if self._cache and self._cache[0] == since and now - self._cache[1] < MINUTE:
                return self._cache[2]
        out = summarise(self.journal.iterate(since, minute_of))
        with self._lock:
            self._cache = (since, now, out)
        return out


def compliance_30d(state_dir: str, keep: float) -> dict[str, Any]:
    """Each "target/scenario"'s last 30 days in the record, as JSON."""
    record = ExposureRecord(state_dir, keep)
    now = time.time()
    return {k: c.as_json() for k, c in record.compliance(now - COMPLIANCE_WINDOW, now).items()}


def minute_of(line: bytes) -> float:
    """A sample line's minute without parsing the rest: `{"t": 1796500000.0, "x": ...`."""
    if not line.startswith(b'{"t": '):
        raise ValueError("not a sample")
    return float(line[6 : line.index(b",", 6)])


def summarise(samples: Iterable[ExposureSample]) -> dict[str, Compliance]:
    """Samples in the order they were recorded (by time): a minute recorded twice (a restart
    within it) counts once."""
    out: dict[str, Compliance] = {}
    last: dict[str, float] = {}
    for sample in samples:
        for key, (exposure, rpo) in sample.x.items():
            if last.get(key, -1.0) >= sample.t:
                continue
            last[key] = sample.t
            c = out.setdefault(key, Compliance(first=sample.t))
            c.minutes += 1
            if exposure is None:
                c.unknown += 1
                continue
            if rpo is None or exposure <= rpo:
                c.within += 1
            if c.worst_seconds is None or exposure > c.worst_seconds:
                c.worst_seconds, c.worst_at = exposure, sample.t
    return out


class ExposureRecorder:
    """Samples every minute in a thread of its own until stopped."""

    def __init__(self, sample: Callable[[], None]) -> None:
        self._sample = sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="exposure-record", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(MINUTE - time.time() % MINUTE):  # on each minute
            self._sample()
