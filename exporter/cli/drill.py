"""`drwatch drill`: the configured restore drills, now, with a report and a Nagios exit code."""

from __future__ import annotations

import json
import sys

from checks.base import Status, worst
from core.durations import format_duration
from core.redact import redact
from exporter.cli.load import load_or_report
from exporter.cli.table import columns
from exporter.drills.engine import DrillEngine
from exporter.drills.history import drill_history
from exporter.drills.result import DrillResult

_HEADER = ("TARGET", "SCENARIO", "STATUS", "RTO", "OBJECTIVE", "SUMMARY")


def drill(path: str, target_name: str | None, scenario: str | None, fmt: str) -> int:
    from exporter.logs import setup_logging

    setup_logging("warning")
    loaded = load_or_report(path)
    if loaded is None:
        return int(Status.UNKNOWN)
    config = loaded.config
    redact.set_secrets(loaded.secrets)
    targets = [t for t in config.targets if t.drills and target_name in (None, t.name)]
    if not targets:
        where = f" for target {target_name!r}" if target_name else ""
        print(
            f"{path}: no drill is configured{where} (a target's drills: section)", file=sys.stderr
        )
        return int(Status.UNKNOWN)
    if scenario is not None:
        targets = [t for t in targets if scenario in t.drill_scenarios()]
        if not targets:
            where = f"target {target_name!r}" if target_name else "any target"
            print(f"{path}: no {scenario} drill is configured for {where}", file=sys.stderr)
            return int(Status.UNKNOWN)
    engine = DrillEngine()
    engine.clean_leftovers(config)  # a one-shot drill that was killed leaves them too
    # A drill run by hand is evidence too: its record joins the daemon's (lines appended).
    engine.history = drill_history(config.state_dir, config.drills)
    results: list[DrillResult] = []
    for target in targets:
        results += engine.run(config, target, scenario)
    objectives = {
        (r.target, r.scenario): config.objective(config.target(r.target), r.scenario).rto
        for r in results
    }
    status = worst([r.status for r in results]) if results else Status.UNKNOWN
    if fmt == "json":
        drills = [r.as_json(objectives[(r.target, r.scenario)]) for r in results]
        print(json.dumps({"status": status.name, "drills": drills}, indent=2))
    else:
        rows = [
            (
                r.target,
                r.scenario,
                r.status.name,
                "-" if r.rto_measured_seconds is None else format_duration(r.rto_measured_seconds),
                _objective(objectives[(r.target, r.scenario)]),
                r.summary,
            )
            for r in results
        ]
        print("\n".join(columns([_HEADER, *rows])))
    return int(status)


def _objective(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else "-"
