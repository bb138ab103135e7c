"""RPO exposure per target and scenario, from the latest results of the checks that measure it.

A scenario is measured by the checks that declare it (`Job.scenarios`: the archiver and RDS both
measure PITR on a target that has both), unless a check finds it does not apply (on a standby it
leaves the scenario out of its exposures); other checks may raise it with what they found (a WAL
archive gap limits PITR whatever the archiver says). The exposure is the largest value; while a
measuring check is down it is unknown (None): an unmeasured objective is an unproven one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from core.config.schema import SCENARIOS, Config, Scenario
from exporter.runtime.results import CheckResult, JobKey, Snapshot
from exporter.runtime.runner import Job

Exposures = dict[tuple[str, Scenario], float | None]  # (target, scenario) -> seconds
COMPLIANCE_MINUTES = 30 * 24 * 60  # the SLO's period, as the recording rules count it


def last_measured(jobs: Iterable[Job], snapshot: Snapshot) -> dict[tuple[str, Scenario], float]:
    """When each scenario's exposure was last known: the oldest of its measuring checks' last
    measurement, or the daemon's start for a check that never measured it. Rules page when this
    is older than the RPO: an unmeasured objective is an unproven one."""
    out: dict[tuple[str, Scenario], float] = {}
    for job in jobs:
        for scenario in job.scenarios:
            when = snapshot.exposure_measured.get(
                (job.target, job.check, scenario), snapshot.started
            )
            key = (job.target, scenario)
            out[key] = min(when, out.get(key, when))
    return out


def combine(jobs: Iterable[Job], results: dict[JobKey, CheckResult]) -> Exposures:
    jobs = list(jobs)
    out: Exposures = {}
    unknown: set[tuple[str, Scenario]] = set()
    for job in jobs:
        result = results.get(job.key)
        for scenario in job.scenarios:
            key = (job.target, scenario)
            if result is not None and scenario not in result.exposures:
                continue  # not applicable there: a standby is not judged as a primary
            value = None if result is None else result.exposures[scenario]
            if value is None:
                unknown.add(key)
                out.setdefault(key, None)
            else:
                out[key] = max(value, out.get(key) or 0.0)
    for job in jobs:
        result = results.get(job.key)
        if result is None:
            continue
        for scenario in SCENARIOS:
            value = result.exposures.get(scenario)
            key = (job.target, scenario)
            if scenario in job.scenarios or value is None or out.get(key) is None:
                continue
            out[key] = max(value, out[key] or 0.0)
    return {key: None if key in unknown else value for key, value in out.items()}


def json_number(value: float | None) -> float | str | None:
    # JSON has no infinity; "+Inf" is how Prometheus spells it.
    if value is not None and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def exposure_rows(
    config: Config,
    jobs: Iterable[Job],
    results: dict[JobKey, CheckResult],
    compliance: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each scenario's exposure against its objective, as `check --format json` and
    /status.json show them; with `compliance` ("target/scenario" -> the 30 days' figures of
    drwatch's own exposure record), those too."""
    rows = []
    for (target, scenario), exposure in combine(jobs, results).items():
        spec = config.objective(config.target(target), scenario)
        row = {
            "target": target,
            "scenario": scenario,
            "exposure_seconds": json_number(exposure),
            "objective_seconds": spec.rpo,
        }
        if compliance is not None:
            found = compliance.get(f"{target}/{scenario}")
            if found is not None and spec.slo is not None:
                outside = found["minutes_recorded"] - found["minutes_within_objective"]
                budget = COMPLIANCE_MINUTES * (1 - spec.slo)  # the month's, in minutes
                found = {**found, "slo": spec.slo,
                         "error_budget_remaining": round(1 - outside / budget, 6)}  # fmt: skip
            row["compliance_30d"] = found
        rows.append(row)
    return rows
