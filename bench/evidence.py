"""What drwatch's own records cost to read: the status page's 30-day compliance (a month of
per-minute exposure samples) and `drwatch report --since 90d` (a year's drill history, 90 days of
samples), for eight scenarios (two targets x four).

    .venv/bin/python bench/evidence.py
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config.drills import DrillCapacity
from exporter.drills.history import DrillRecord, drill_history
from exporter.reports.evidence import build
from exporter.runtime.exposure_record import (
    COMPLIANCE_WINDOW,
    MAX_BYTES,
    ExposureRecord,
    ExposureSample,
)
from tests.helpers import make_config

DAY = 86400.0
KEYS = [f"{t}/{s}" for t in ("app", "billing") for s in ("pitr", "full_restore", "cross_region",
                                                         "primary_failover")]  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        now = time.time()
        record = ExposureRecord(state, 366 * DAY, MAX_BYTES)
        minutes = int(90 * DAY / 60)
        started = time.perf_counter()
        batch = []
        for m in range(minutes):
            t = now - (minutes - m) * 60
            batch.append(ExposureSample(t=t - t % 60, x={k: (30.0 + m % 500, 300.0) for k in KEYS}))
            if len(batch) == 10_000:
                record.journal.append(batch)
                batch = []
        record.journal.append(batch)
        written = time.perf_counter() - started
        size = (Path(state) / "exposure-record.jsonl").stat().st_size
        history = drill_history(state, DrillCapacity())
        history.append([
            DrillRecord(target="app", scenario="full_restore", started_at=now - d * DAY,
                        outcome="passed", summary="restored, checked", duration_seconds=3000.0,
                        phases={"download": 1000.0, "restore": 1500.0, "verify": 500.0},
                        backup={"backup": f"d{d}.dump", "backup_bytes": 10 << 30})
            for d in range(365, 0, -1)
        ])  # fmt: skip
        started = time.perf_counter()
        compliance = record.compliance(now - COMPLIANCE_WINDOW, now)
        month = time.perf_counter() - started
        config = make_config(
            [{"name": "app", "backups": {"store": "file:///b/"},
              "drills": {"full_restore": {}, "scratch": {"user": "postgres"}}}],
            state_dir=state,
        ).config  # fmt: skip
        started = time.perf_counter()
        doc = build(config, "bench.yml", now - 90 * DAY, now)
        report = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"exposure record: {minutes:,} minutes x {len(KEYS)} scenarios, "
              f"{size / 2**20:.1f} MiB, written in {written:.1f} s")  # fmt: skip
        print(f"30-day compliance (status page, cached a minute): {month:.2f} s, "
              f"{len(compliance)} scenarios")  # fmt: skip
        print(f"report --since 90d: {report:.2f} s, "
              f"{sum(len(t['scenarios']) for t in doc['targets'])} scenario rows")  # fmt: skip
        print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
