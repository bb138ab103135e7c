"""The drills' rows of the status page and /status.json: measured RTO beside the objective."""

from __future__ import annotations

import time
from typing import Any

from core.config.schema import Config
from exporter.drills.engine import DrillEngine


def drill_rows(engine: DrillEngine, config: Config) -> list[dict[str, Any]]:
    last, passed, _ = engine.snapshot()
    now = time.time()
    rows = []
    for target in config.targets:
        for scenario in target.drill_scenarios():
            key = (target.name, scenario)
            result, good = last.get(key), passed.get(key)
            objective = config.objective(target, scenario).rto  # type: ignore[arg-type]
            rows.append(
                {
                    "target": target.name,
                    "scenario": scenario,
                    "status": result.status.name if result else "UNKNOWN",
                    "summary": result.summary if result else "no drill yet",
                    "rto_measured_seconds": good.duration_seconds if good else None,
                    "rto_objective_seconds": objective,
                    "last_run_seconds_ago": now - result.started_at if result else None,
                    "last_success_seconds_ago": now - good.started_at if good else None,
                }
            )
    return rows
