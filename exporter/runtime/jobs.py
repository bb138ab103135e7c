"""Turns the config into jobs, one per check x target, from the check registry."""

from __future__ import annotations

from typing import Any

from checks.base import Check
from checks.definition import BuildContext
from checks.registry import REGISTRY
from core.config.schema import Config
from exporter.runtime.results import JobKey
from exporter.runtime.runner import Job

# The checks behind the jobs: on reload each new check adopts its predecessor's state.
Instances = dict[JobKey, Check[Any]]


def build_jobs(config: Config, previous: Instances | None = None) -> tuple[list[Job], Instances]:
    jobs: list[Job] = []
    instances: Instances = {}
    for target in config.targets:
        context = BuildContext(config, target)
        for definition in REGISTRY:
            planned = definition.plan(context)
            if planned is None:
                continue
            key = (target.name, definition.name)
            old = (previous or {}).get(key)
            if old is not None:
                planned.check.adopt(old)
            instances[key] = planned.check
            jobs.append(
                Job(
                    target=target.name,
                    check=definition.name,
                    interval=planned.interval,
                    timeout=planned.timeout,
                    metrics=definition.metrics + planned.metrics,
                    scenarios=definition.scenarios
                    if planned.scenarios is None
                    else planned.scenarios,
                    collect=planned.check.run,
                    after=definition.after,
                )
            )
    return jobs, instances
