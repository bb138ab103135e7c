"""The drills' rows of the status page and /status.json: measured RTO beside the objective, the
runbook's testing schedule (next run, overdue) and the RTO forecast."""

from __future__ import annotations

import time
from typing import Any

from core.config.drills import RUNBOOK_TESTS
from core.config.schema import Config
from exporter.drills.engine import DrillEngine, overdue


def drill_rows(engine: DrillEngine, config: Config) -> list[dict[str, Any]]:
    last, passed, expected = engine.snapshot()
    now = time.time()
    rows = []
    for target in config.targets:
        drills = target.drills
        for scenario in target.drill_scenarios():
            assert drills is not None
            key = (target.name, scenario)
            result, good = last.get(key), passed.get(key)
            objective = config.objective(target, scenario).rto
            test, frequency, _, _ = RUNBOOK_TESTS[scenario]
            max_age = drills.max_age_of(scenario)
            next_run = engine.next_run(key)
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
                    "test": test,
                    "frequency": frequency,
                    "schedule": drills.schedule_of(scenario),
                    "next_run_in_seconds": None if next_run is None else next_run - now,
                    "max_age_seconds": max_age,
                    "overdue": bool(overdue(passed, expected, key, max_age, now)),
                    "rto_forecast_seconds": engine.forecasts.get(key, {}),
                    "restored_by": result.values.get("restored_by") if result else None,
                    "wal_from": result.values.get("wal_from") if result else None,
                    "measured_data_loss_seconds": (
                        result.values.get("measured_data_loss_seconds") if result else None
                    ),
                }
            )
    return rows
