"""`drwatch check`: every configured check once, as a table or JSON, with a Nagios exit code."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from checks.base import Status, worst
from core.config.loading import LoadedConfig
from exporter.exposures import combine
from exporter.jobs import build_jobs
from exporter.results import CheckResult
from exporter.runner import DeadlineRunner, Job


def run_once(
    loaded: LoadedConfig, target: str | None = None, checks: frozenset[str] | None = None
) -> tuple[list[Job], list[CheckResult]]:
    jobs, _ = build_jobs(loaded.config)
    if target is not None:
        jobs = [j for j in jobs if j.target == target]
    if checks is not None:
        jobs = [j for j in jobs if j.check in checks]
    runner = DeadlineRunner()
    by_key = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
        for batch in ([j for j in jobs if j.after is None], [j for j in jobs if j.after]):
            by_key.update({r.key: r for r in pool.map(runner.run, batch)})
    return jobs, [by_key[j.key] for j in jobs]


def json_number(value: float | None) -> float | str | None:
    # JSON has no infinity; "+Inf" is how Prometheus spells it.
    if value is not None and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def exposures(
    loaded: LoadedConfig, jobs: list[Job], results: list[CheckResult]
) -> list[dict[str, Any]]:
    by_key = {r.key: r for r in results}
    out = []
    for (target, scenario), exposure in combine(jobs, by_key).items():
        objective = loaded.config.objective(loaded.config.target(target), scenario)
        out.append(
            {
                "target": target,
                "scenario": scenario,
                "exposure_seconds": json_number(exposure),
                "objective_seconds": objective.rpo,
            }
        )
    return out


def overall(results: list[CheckResult]) -> Status:
    return worst([r.status for r in results])


def as_json(loaded: LoadedConfig, jobs: list[Job], results: list[CheckResult]) -> str:
    doc = {
        "status": overall(results).name,
        "results": [
            {
                "target": r.target,
                "check": r.check,
                "status": r.status.name,
                "summary": r.summary,
                "values": {
                    k: json_number(v) if isinstance(v, float) else v for k, v in r.values.items()
                },
            }
            for r in results
        ],
        "exposures": exposures(loaded, jobs, results),
        "off": [str(off) for off in loaded.off],
    }
    return json.dumps(doc, indent=2)


def columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as aligned text columns; the last column (free text) is left unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def as_table(loaded: LoadedConfig, results: list[CheckResult]) -> str:
    header = ("TARGET", "CHECK", "STATUS", "SUMMARY")
    rows = [(r.target, r.check, r.status.name, r.summary) for r in results]
    lines = columns([header, *rows])
    lines += [f"off: {off}" for off in loaded.off]
    if not rows:
        lines.append("no check is configured")
    return "\n".join(lines)
