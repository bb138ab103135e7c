"""The RTO forecast: each phase's seconds per byte times the size the store's trend gives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.config.drills import DrillCapacity
from exporter.drills.engine import DrillEngine
from exporter.drills.forecast import expected_size, forecast
from exporter.drills.history import DrillRecord, drill_history
from exporter.drills.metrics import DrillCollector
from tests.helpers import make_config

DAY = 86400.0
GIB = 1 << 30


def _drill(at: float, size: int, download: float, restore: float, verify: float,
           overhead: float = 20.0, outcome: str = "passed") -> DrillRecord:  # fmt: skip
    return DrillRecord(
        target="app", scenario="full_restore", started_at=at, outcome=outcome,  # type: ignore[arg-type]
        summary="", duration_seconds=download + restore + verify + overhead,
        phases={"download": download, "restore": restore, "verify": verify},
        phase_bytes={"download": size, "restore": size},
        backup={"backup": f"{at}.dump", "backup_bytes": size, "backup_time": at},
        # The store held a dump a day, growing by 1 GiB a day, up to this one.
        sizes=[(at - d * DAY, size - d * GIB) for d in range(10, -1, -1)],
    )  # fmt: skip


def test_a_growing_store_forecasts_a_longer_recovery() -> None:
    now = time.time()
    # 100 GiB today, 1 GiB more a day: 130 GiB in 30 days, 190 GiB in 90.
    history = [
        _drill(now - 14 * DAY, 86 * GIB, 860, 1720, 86),
        _drill(now - 7 * DAY, 93 * GIB, 930, 1860, 93),
        _drill(now, 100 * GIB, 1000, 2000, 100),  # 10 s, 20 s and 1 s per GiB
    ]
    found = forecast(history, now)
    assert found["30d"] == pytest.approx(20 + 31 * 130, rel=1e-3)
    assert found["90d"] == pytest.approx(20 + 31 * 190, rel=1e-3)


def test_a_failed_or_deferred_drill_measures_no_throughput() -> None:
    now = time.time()
    slow = _drill(now, 100 * GIB, 99999, 99999, 99999, outcome="failed")
    assert forecast([slow], now) == {}
    good = _drill(now - DAY, 99 * GIB, 990, 1980, 99)
    assert forecast([good, slow], now)["30d"] == pytest.approx(20 + 31 * 130, rel=1e-3)


def test_the_trend_is_a_line_through_the_sizes_and_one_point_is_flat() -> None:
    assert expected_size([(0.0, 100.0)], 1e9) == 100.0
    assert expected_size([(0.0, 100.0), (10.0, 110.0), (20.0, 120.0)], 40.0) == pytest.approx(140)
    assert expected_size([(0.0, 100.0), (10.0, 0.0)], 100.0) == 0.0  # never below nothing
    assert expected_size([], 0.0) is None


def test_the_engine_exports_the_forecast_from_its_history(tmp_path: Path) -> None:
    loaded = make_config(
        [{"name": "app", "backups": {"store": "file:///b/"},
          "drills": {"full_restore": {}, "scratch": {"user": "postgres"}}}],
        state_dir=str(tmp_path),
    )  # fmt: skip
    now = time.time()
    drill_history(str(tmp_path), DrillCapacity()).append(
        [_drill(now - 7 * DAY, 93 * GIB, 930, 1860, 93), _drill(now, 100 * GIB, 1000, 2000, 100)]
    )
    engine = DrillEngine()
    engine.configure(loaded.config)  # a restart: the forecast comes back from the history
    registry = CollectorRegistry()
    registry.register(DrillCollector(engine, lambda: loaded.config))
    text = generate_latest(registry).decode()
    line = next(
        x for x in text.splitlines()
        if x.startswith('drwatch_rto_forecast_seconds{horizon="30d"')
    )  # fmt: skip
    assert float(line.split()[-1]) == pytest.approx(20 + 31 * 130, rel=1e-3)
