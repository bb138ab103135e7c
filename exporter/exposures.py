"""RPO exposure per target and scenario, from the latest results of the checks that measure it.

A scenario is measured by one check (`Job.scenarios`); other checks may cap it from below with
what they found (a WAL archive gap limits PITR whatever the archiver says), so the exposure is
the largest known value. A scenario whose measuring check is down is unknown (None).
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.config import SCENARIOS, Scenario
from exporter.results import CheckResult, JobKey
from exporter.runner import Job

Exposures = dict[tuple[str, Scenario], float | None]  # (target, scenario) -> seconds


def combine(jobs: Iterable[Job], results: dict[JobKey, CheckResult]) -> Exposures:
    jobs = list(jobs)
    out: Exposures = {}
    for job in jobs:
        result = results.get(job.key)
        for scenario in job.scenarios:
            out[(job.target, scenario)] = None if result is None else result.exposures.get(scenario)
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
    return out
