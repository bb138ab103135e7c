"""What one drill found, phase by phase, and how its timing is measured."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.base import Status
from core.programs import PROGRAMS, TEAM_TOOLS

PHASES = ("download", "restore", "verify")


@dataclass
class DrillResult:
    target: str
    scenario: str
    started_at: float  # unix time
    ok: bool = False
    summary: str = ""
    duration_seconds: float = 0.0  # start to a restored, checked, connectable database: the RTO
    phases: dict[str, float] = field(default_factory=dict)
    phase_bytes: dict[str, int] = field(default_factory=dict)  # what each phase moved
    recovered_to: float | None = None  # the newest data the copy holds (unix time)
    point: str | None = None  # pitr: the point of the recovery window asked for
    deferred: bool = False  # could not start for want of capacity: not judged
    sizes: list[tuple[float, int]] = field(default_factory=list)  # the store's (time, bytes)
    # table -> (rows in the copy, rows production has up to the copy's newest and the copy lacks)
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        if self.deferred:
            return Status.UNKNOWN
        return Status.OK if self.ok else Status.CRITICAL

    @property
    def outcome(self) -> str:
        return "deferred" if self.deferred else "passed" if self.ok else "failed"

    @property
    def rto_measured_seconds(self) -> float | None:
        """Only a drill that passed measured a recovery time."""
        return self.duration_seconds if self.ok else None

    def as_json(self, rto_objective: float | None) -> dict[str, Any]:
        return {
            "target": self.target,
            "scenario": self.scenario,
            "status": self.status.name,
            "summary": self.summary,
            "duration_seconds": round(self.duration_seconds, 3),
            "rto_measured_seconds": (
                None if self.rto_measured_seconds is None else round(self.rto_measured_seconds, 3)
            ),
            "rto_objective_seconds": rto_objective,
            "recovered_to": self.recovered_to,
            "point": self.point,
            "outcome": self.outcome,
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "phase_bytes": dict(self.phase_bytes),
            "values": {
                **self.values,
                "tables": {t: {"rows": r, "missing": m} for t, (r, m) in self.tables.items()},
            },
        }


def deferred(target: str, scenario: str, why: str) -> DrillResult:
    return DrillResult(target, scenario, time.time(), summary=f"deferred: {why}", deferred=True)


def could_not_run(target: str, scenario: str, started: float, exc: Exception) -> DrillResult:
    """A drill that broke before it could judge a copy: failed, naming what broke (a program
    that is not installed, by name and package)."""
    if isinstance(exc, FileNotFoundError) and exc.filename:
        program = Path(str(exc.filename)).name
        package = next((p.package for p in (*PROGRAMS, *TEAM_TOOLS) if p.name == program), None)
        why = f"cannot run {program}: not installed" + (
            f" (Debian package {package})" if package else ""
        )
    else:
        why = f"{type(exc).__name__}: {exc}"
    return DrillResult(
        target, scenario, started, ok=False, summary=f"drill could not run: {why}",
        duration_seconds=time.time() - started,
    )  # fmt: skip


class Timer:
    """Times the phases of a drill against one deadline."""

    def __init__(self, result: DrillResult, deadline: float) -> None:
        self.result = result
        self.deadline = deadline
        self._started = time.monotonic()

    @contextmanager
    def phase(self, name: str, moved_bytes: int = 0) -> Iterator[None]:
        """Times `name`; `moved_bytes`: what it downloads, restores or replays (throughput)."""
        if moved_bytes:
            bytes_so_far = self.result.phase_bytes.get(name, 0)
            self.result.phase_bytes[name] = bytes_so_far + moved_bytes
        started = time.monotonic()
        try:
            yield
        finally:  # a phase may come back (the WAL is downloaded after the base backup unpacks)
            elapsed = time.monotonic() - started
            self.result.phases[name] = self.result.phases.get(name, 0.0) + elapsed

    def remaining(self) -> float:
        """What is left of the deadline; TimeoutExpired once it has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired("drill", 0)
        return left

    def fail(self, exc: Exception, timeout: float) -> DrillResult:
        """The drill failed with `exc`: its message, or the deadline it ran past."""
        if isinstance(exc, subprocess.TimeoutExpired):
            return self.finish(False, f"timed out after {timeout:g} s")
        return self.finish(False, str(exc))

    def finish(self, ok: bool, summary: str) -> DrillResult:
        self.result.ok = ok
        warnings = self.result.values.get("warnings") or []
        # What would break an application, found on a copy that passed: said, not hidden.
        self.result.summary = summary + (f"; WARNING: {'; '.join(warnings)}" if warnings else "")
        self.result.duration_seconds = time.monotonic() - self._started
        return self.result
