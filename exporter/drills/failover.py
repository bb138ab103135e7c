"""The primary failover RTO, measured from the failovers that happen (a drill never fails
production over by itself):

- RDS: the instance's failover events (the rds check's `RdsFailovers`): started to completed.
- Self-managed (Patroni, repmgr, by hand): the cluster check sees the server answer on a newer
  timeline; the failover took at most the time from the last good run on the old timeline to
  the first good run on the new one, a figure bounded by the check interval, and said so.
- `drwatch drill --scenario failover` (RDS only, asked for by a person): see rds_failover.

Each failover is kept in `<state_dir>/failover-history.jsonl`; the newest is the measured
`primary_failover` RTO.
"""

from __future__ import annotations

import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from checks.rds import RdsFailovers
from core.config.drills import DrillCapacity
from core.journal import Journal
from exporter.drills.history import kept_record
from exporter.runtime.results import CheckResult

Source = Literal["events", "observed", "drill"]


class FailoverRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    target: str
    source: Source
    started_at: float
    completed_at: float
    detail: str = ""

    @property
    def duration_seconds(self) -> float:
        return self.completed_at - self.started_at


_SCHEMA = TypeAdapter(FailoverRecord)


def failover_history(state_dir: str, capacity: DrillCapacity) -> Journal[FailoverRecord]:
    return kept_record(
        state_dir, "failover-history.jsonl", _SCHEMA, lambda r: r.completed_at, capacity
    )


class FailoverObserver:
    """Reads check results as they are stored; records each failover once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._journal: Journal[FailoverRecord] | None = None
        self._last_good: dict[str, tuple[float, int]] = {}  # target -> (time, timeline)
        self._newest: dict[str, FailoverRecord] = {}
        self._known: set[tuple[str, str, float]] = set()  # (target, source, started_at)

    def configure(self, state_dir: str, capacity: DrillCapacity) -> None:
        journal = failover_history(state_dir, capacity)
        with self._lock:
            self._journal = journal
            self._newest, self._known = {}, set()
            for record in journal.read():
                self._remember(record)

    def _remember(self, record: FailoverRecord) -> None:
        self._known.add((record.target, record.source, record.started_at))
        newest = self._newest.get(record.target)
        if newest is None or record.completed_at >= newest.completed_at:
            self._newest[record.target] = record

    def newest(self) -> dict[str, FailoverRecord]:
        with self._lock:
            return dict(self._newest)

    def record(self, record: FailoverRecord) -> bool:
        """Keeps a failover not seen before; False if it was."""
        with self._lock:
            if (record.target, record.source, record.started_at) in self._known:
                return False
            self._remember(record)
            journal = self._journal
        if journal is not None:
            journal.append([record])
        return True

    def observe(self, result: CheckResult) -> FailoverRecord | None:
        """A failover this result shows, recorded; None when it shows none."""
        if isinstance(result.facts, RdsFailovers):
            found = None
            for started, completed in result.facts.failovers:
                record = FailoverRecord(
                    target=result.target, source="events", started_at=started,
                    completed_at=completed, detail="RDS events: failover started to completed",
                )  # fmt: skip
                if self.record(record):
                    found = record
            return found
        if result.check != "cluster" or not result.up:
            return None
        timeline = result.values.get("timeline")
        if not isinstance(timeline, int):
            return None
        with self._lock:
            before = self._last_good.get(result.target)
            self._last_good[result.target] = (result.finished_at, timeline)
        if before is None or timeline <= before[1]:
            return None
        record = FailoverRecord(
            target=result.target,
            source="observed",
            started_at=before[0],
            completed_at=result.finished_at,
            detail=(
                f"timeline {before[1]} to {timeline}: at most this long, from the last good "
                "check on the old timeline to the first on the new (bounded by the check "
                "interval)"
            ),
        )
        return record if self.record(record) else None
