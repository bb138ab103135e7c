"""The RTO a drill would measure at the backup size expected in 30 and 90 days.

Each passing drill says how long each phase took for how big a backup: seconds per byte of
download, restore, replay and verification, and a fixed part (starting servers, connecting)
that does not grow. The backup's size trend is a least-squares line through the sizes the
store held (the retained backups' sizes and times, recorded at each drill). The forecast is the
fixed part plus each phase's seconds per byte times the size expected then: the medians of the
last passing drills, so one slow night does not move it alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from exporter.drills.history import DrillRecord

HORIZONS = {"30d": 30 * 86400.0, "90d": 90 * 86400.0}
DRILLS_USED = 5  # the newest passing drills the medians are taken over


def expected_size(sizes: Sequence[tuple[float, float]], when: float) -> float | None:
    """The size the trend line through (time, bytes) gives at `when`; one point: that size."""
    if not sizes:
        return None
    if len(sizes) == 1 or len({t for t, _ in sizes}) == 1:
        return sizes[-1][1]
    n = len(sizes)
    mean_t = sum(t for t, _ in sizes) / n
    mean_b = sum(b for _, b in sizes) / n
    slope = sum((t - mean_t) * (b - mean_b) for t, b in sizes) / sum(
        (t - mean_t) ** 2 for t, _ in sizes
    )
    return max(0.0, mean_b + slope * (when - mean_t))


def size_history(records: Sequence[DrillRecord]) -> list[tuple[float, float]]:
    """(time, bytes) of the backups the store held at each drill, and of each drill's backup."""
    points: dict[float, float] = {}
    for record in records:
        for when, size in record.sizes:
            points[when] = size
        when = record.backup.get("backup_time", record.started_at)
        if isinstance(record.backup.get("backup_bytes"), int) and isinstance(when, float | int):
            points.setdefault(float(when), float(record.backup["backup_bytes"]))
    return sorted(points.items())


def forecast(records: Sequence[DrillRecord], now: float) -> dict[str, float]:
    """horizon -> forecast RTO seconds, from the key's records (oldest first); {} without a
    passing drill that knows its backup's size."""
    passed = [
        r for r in records
        if r.outcome == "passed" and int(r.backup.get("backup_bytes", 0) or 0) > 0
    ][-DRILLS_USED:]  # fmt: skip
    if not passed:
        return {}
    phases = {p for r in passed for p in r.phases}
    per_byte = {
        p: statistics.median(r.phases.get(p, 0.0) / int(r.backup["backup_bytes"]) for r in passed)
        for p in phases
    }
    fixed = statistics.median(max(0.0, r.duration_seconds - sum(r.phases.values())) for r in passed)
    sizes = size_history(records)
    out = {}
    for horizon, seconds in HORIZONS.items():
        size = expected_size(sizes, now + seconds)
        if size is not None:
            out[horizon] = fixed + sum(rate * size for rate in per_byte.values())
    return out
