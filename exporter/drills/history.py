"""Every drill's record, kept in state_dir (`drill-history.jsonl`, bounded by
`drills.history_keep` and `drills.history_max_bytes`): the evidence a report is made from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter

from core.config.drills import DrillCapacity
from core.journal import Journal
from exporter import __version__
from exporter.drills.result import DrillResult


class DrillRecord(BaseModel):
    # A newer drwatch's extra fields are ignored; a missing one is the line's loss, not ours.
    model_config = ConfigDict(extra="ignore", frozen=True)

    target: str
    scenario: str
    started_at: float
    outcome: Literal["passed", "failed", "deferred"]
    summary: str
    duration_seconds: float
    rto_objective_seconds: float | None = None
    point: str | None = None
    recovered_to: float | None = None
    phases: dict[str, float] = {}
    phase_bytes: dict[str, int] = {}
    backup: dict[str, Any] = {}  # key, bytes, etag, sha256, time: which backup was proven
    # (time, bytes) of the backups the store held: the size trend an RTO forecast follows.
    sizes: list[tuple[float, int]] = []
    version: str = ""
    # The path the restore took (values.method, restored_by, wal_from), and the data loss the
    # heartbeat measured on the copy (postgres.heartbeat; None: not measured).
    path: dict[str, str] = {}
    measured_data_loss_seconds: float | None = None

    @property
    def rto_measured_seconds(self) -> float | None:
        return self.duration_seconds if self.outcome == "passed" else None


BACKUP_FIELDS = ("backup", "backup_bytes", "backup_etag", "backup_sha256", "backup_time")
PATH_FIELDS = ("method", "restored_by", "wal_from", "isolation")
_SCHEMA = TypeAdapter(DrillRecord)
T = TypeVar("T")
MAX_SIZES = 200


def record_of(result: DrillResult, rto_objective: float | None) -> DrillRecord:
    return DrillRecord(
        target=result.target,
        scenario=result.scenario,
        started_at=result.started_at,
        outcome=result.outcome,
        summary=result.summary,
        duration_seconds=result.duration_seconds,
        rto_objective_seconds=rto_objective,
        point=result.point,
        recovered_to=result.recovered_to,
        phases=dict(result.phases),
        phase_bytes=dict(result.phase_bytes),
        backup={k: result.values[k] for k in BACKUP_FIELDS if k in result.values},
        sizes=result.sizes[-MAX_SIZES:],
        version=__version__,
        path={k: str(result.values[k]) for k in PATH_FIELDS if k in result.values},
        measured_data_loss_seconds=result.values.get("measured_data_loss_seconds"),
    )


def kept_record(
    state_dir: str,
    name: str,
    schema: TypeAdapter[T],
    time_of: Callable[[T], float],
    capacity: DrillCapacity,
) -> Journal[T]:
    """A record in state_dir bounded as `drills.history_keep` and `history_max_bytes` say."""
    return Journal(
        Path(state_dir) / name, schema, time_of, capacity.history_keep,
        int(capacity.history_max_bytes),
    )  # fmt: skip


def drill_history(state_dir: str, capacity: DrillCapacity) -> Journal[DrillRecord]:
    """Every drill's record, each line chained to the one before it (core.chain)."""
    journal = kept_record(
        state_dir, "drill-history.jsonl", _SCHEMA, lambda r: r.started_at, capacity
    )
    journal.chained = True
    return journal
