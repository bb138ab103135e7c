"""`drwatch check`: every configured check once, as a table or JSON, with a Nagios exit code."""

from __future__ import annotations

import json

from checks.base import Status, worst
from core.config.loading import LoadedConfig
from exporter.cli.table import columns
from exporter.runtime.exposures import exposure_rows, json_number
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import Job


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
        "exposures": exposure_rows(loaded.config, jobs, {r.key: r for r in results}),
        "off": [str(off) for off in loaded.off],
    }
    return json.dumps(doc, indent=2)


def as_table(loaded: LoadedConfig, results: list[CheckResult]) -> str:
    header = ("TARGET", "CHECK", "STATUS", "SUMMARY")
    rows = [(r.target, r.check, r.status.name, r.summary) for r in results]
    lines = columns([header, *rows])
    lines += [f"off: {off}" for off in loaded.off]
    if not rows:
        lines.append("no check is configured")
    return "\n".join(lines)
