"""What AWS drills may spend: temporary resources at once (`drills.aws.max_concurrent`) and
instance-hours each calendar month, UTC (`drills.aws.max_instance_hours`), kept in state_dir
(`aws-drill-hours.json`) across restarts. Past either, a drill is deferred, not failed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.config.aws_drills import AwsDrillCapacity
from core.statefile import read_state, write_state
from exporter.drills.capacity import DrillDeferred

_LOCK = threading.Lock()
_RUNNING: set[str] = set()  # the AWS drills whose resources exist now (target/scenario)


class _Ledger(BaseModel):
    model_config = ConfigDict(extra="ignore")
    month: str = ""
    hours: float = Field(0.0, ge=0.0)


_SCHEMA = TypeAdapter(_Ledger)


def _month(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


def _path(state_dir: str) -> Path:
    return Path(state_dir) / "aws-drill-hours.json"


def used(state_dir: str, now: float | None = None) -> float:
    """Instance-hours AWS drills used this month."""
    now = time.time() if now is None else now
    ledger = read_state(_path(state_dir), _SCHEMA)
    return ledger.hours if ledger is not None and ledger.month == _month(now) else 0.0


def claim(state_dir: str, key: str, capacity: AwsDrillCapacity) -> None:
    """A slot for one AWS drill, or DrillDeferred saying which limit it would pass."""
    with _LOCK:
        spent = used(state_dir)
        if spent >= capacity.max_instance_hours:
            raise DrillDeferred(
                f"AWS drills used {spent:.1f} of this month's {capacity.max_instance_hours:g} "
                "instance-hours (drills.aws.max_instance_hours)"
            )
        if len(_RUNNING) >= capacity.max_concurrent:
            raise DrillDeferred(
                f"{len(_RUNNING)} AWS drill(s) already hold resources "
                f"(drills.aws.max_concurrent: {capacity.max_concurrent})"
            )
        _RUNNING.add(key)


def release(state_dir: str, key: str, seconds: float) -> None:
    """The slot back, and the resource's lifetime added to this month's hours."""
    with _LOCK:
        _RUNNING.discard(key)
        now = time.time()
        hours = used(state_dir, now) + seconds / 3600.0
        write_state(_path(state_dir), json.dumps({"month": _month(now), "hours": hours}))
