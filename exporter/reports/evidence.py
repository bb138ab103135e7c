"""The evidence report's content: per target and scenario, what drills ran and found, how the
testing schedule was kept, the measured RTO and the longest RPO exposure, from drwatch's own
records in state_dir (drill history, the per-minute exposure record). A stable JSON document;
`render` turns it into Markdown or HTML."""

from __future__ import annotations

import itertools
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.chain import check
from core.config.drills import RUNBOOK_TESTS, cron_trigger
from core.config.schema import Config, Target
from exporter import __version__
from exporter.drills.failover import FailoverRecord, failover_history
from exporter.drills.forecast import forecast
from exporter.drills.history import DrillRecord, drill_history
from exporter.reports.controls import controls
from exporter.reports.pictures import ExposureSeries
from exporter.reports.verdict import verdicts
from exporter.runtime.exposure_record import Compliance, ExposureRecord, minute_of, summarise

SCHEMA_VERSION = 1
MAX_FIRE_TIMES = 10_000  # a cron every minute for a week: enough to count, bounded


def build(
    config: Config, config_path: str, since: float, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    drills = drill_history(config.state_dir, config.drills)
    records = drills.read(since)
    exposures = ExposureRecord(config.state_dir, config.drills.history_keep)
    series = ExposureSeries(since, now)
    compliance = summarise(series.watch(exposures.journal.iterate(since, minute_of)))
    failovers = failover_history(config.state_dir, config.drills).read(since)
    integrity = _integrity(drills.path)
    targets = []
    for target in config.targets:
        scenarios = _scenarios(target, records, compliance, failovers)
        if scenarios:
            targets.append(
                {
                    "target": target.name,
                    "scenarios": [
                        {
                            **_scenario(
                                config, target, s, records, compliance, failovers, since, now
                            ),
                            "exposure_series": series.of(f"{target.name}/{s}"),
                        }
                        for s in scenarios
                    ],
                }
            )
    doc = {
        "report": "drwatch evidence report",
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(now),
        "since": _iso(since),
        "until": _iso(now),
        "drwatch_version": __version__,
        "config": config_path,
        "verdicts": verdicts(targets, max(1, int((now - since) / 60))),
        "targets": targets,
        "history_integrity": integrity,
        "how_made": [
            *_how_made(config, drills.skipped + exposures.journal.skipped, compliance, since, now),
            _chain_said(integrity),
        ],
        "cannot_show": CANNOT_SHOW,
    }
    doc["controls"] = controls(doc)
    return doc


CANNOT_SHOW = [
    "A passing drill proves the backup it restored, on the scratch server it restored to, at "
    "that time; not every backup, nor a restore on production's hardware.",
    "Rows are compared for the tables the target's verification names; other tables are "
    "proven only to restore.",
    "Minutes drwatch did not run are not in the exposure record; the coverage figure says how "
    "much of the period is missing.",
    "Drills and exposures before drwatch kept this record (or beyond its size and age bounds) "
    "are not shown.",
    "The records are drwatch's own files in state_dir: anyone who can write there can change "
    "them. The drill history's chain finds a record changed or removed before the newest; the "
    "newest line, or the whole file rewritten with a new chain, is found only against a signed "
    "report (drwatch report --sign) kept elsewhere.",
]


def _scenarios(
    target: Target,
    records: list[DrillRecord],
    compliance: dict[str, Any],
    failovers: list[FailoverRecord],
) -> list[str]:
    found = list(target.drill_scenarios())
    found += [r.scenario for r in records if r.target == target.name]
    found += [k.split("/", 1)[1] for k in compliance if k.split("/", 1)[0] == target.name]
    if any(f.target == target.name for f in failovers):
        found.append("primary_failover")
    return list(dict.fromkeys(found))


def _scenario(
    config: Config,
    target: Target,
    scenario: str,
    records: list[DrillRecord],
    compliance: dict[str, Any],
    failovers: list[FailoverRecord],
    since: float,
    now: float,
) -> dict[str, Any]:
    mine = [r for r in records if r.target == target.name and r.scenario == scenario]
    objective = config.objective(target, scenario)
    measured = [r.duration_seconds for r in mine if r.outcome == "passed"]
    outcomes = [r.outcome for r in mine]
    doc: dict[str, Any] = {
        "scenario": scenario,
        "drills": {
            "run": len([o for o in outcomes if o != "deferred"]),
            "passed": outcomes.count("passed"),
            "failed": outcomes.count("failed"),
            "deferred": outcomes.count("deferred"),
        },
        "rto": {
            "objective_seconds": objective.rto,
            "median_seconds": statistics.median(measured) if measured else None,
            "worst_seconds": max(measured) if measured else None,
            "within_objective": (
                None if not measured or objective.rto is None else max(measured) <= objective.rto
            ),
        },
        "records": [_record(r) for r in mine],
    }
    if scenario in RUNBOOK_TESTS and target.drills and scenario in target.drill_scenarios():
        doc["schedule"] = _schedule(target, scenario, mine, since, now)
        doc["forecast_seconds"] = forecast(mine, now)
    exposure = compliance.get(f"{target.name}/{scenario}")
    losses = [loss for r in mine if (loss := r.measured_data_loss_seconds) is not None]
    doc["rpo"] = {
        "objective_seconds": objective.rpo,
        **({} if exposure is None else exposure.as_json()),
        # What drills measured on their copies (the heartbeat), beside the exposure inferred
        # from the newest backup and WAL.
        "measured_loss_worst_seconds": max(losses) if losses else None,
        "measured_loss_drills": len(losses),
    }
    mine_failovers = [f for f in failovers if f.target == target.name]
    if scenario == "primary_failover" and mine_failovers:
        times = [f.duration_seconds for f in mine_failovers]
        doc["failovers"] = [
            {**f.model_dump(), "duration_seconds": f.duration_seconds} for f in mine_failovers
        ]
        doc["rto"].update(
            median_seconds=statistics.median(times),
            worst_seconds=max(times),
            within_objective=None if objective.rto is None else max(times) <= objective.rto,
        )
    return doc


def _schedule(
    target: Target, scenario: str, mine: list[DrillRecord], since: float, now: float
) -> dict[str, Any]:
    """The runbook's test, its cron's runs in the period, and the longest stretch without a
    pass (from the period's start, or the first record, to now): kept when within max_age. No
    pass in the period is never kept, whatever the period's length."""
    drills = target.drills
    assert drills is not None
    test, frequency, _, _ = RUNBOOK_TESTS[scenario]
    schedule, max_age = drills.schedule_of(scenario), drills.max_age_of(scenario)
    passes = [r.started_at for r in mine if r.outcome == "passed"]
    start = max(since, mine[0].started_at if mine else since)
    edges = [start, *passes, now]
    longest = max(b - a for a, b in itertools.pairwise(edges))
    if not passes:  # nothing proven in the period: the whole period went without a pass
        longest = now - since
    return {
        "test": test,
        "frequency": frequency,
        "cron": schedule,
        "timezone": drills.timezone,
        "max_age_seconds": max_age,
        "scheduled_runs": _fire_times(schedule, drills.timezone, since, now),
        "longest_without_pass_seconds": longest,
        "kept": bool(passes) and longest <= max_age,
        "passes": len(passes),
    }


def _fire_times(schedule: str, timezone: str, since: float, now: float) -> int:
    """How many times the cron fired (or would have) in the period."""
    trigger = cron_trigger(schedule, timezone)
    end = datetime.fromtimestamp(now, UTC)
    when = trigger.get_next_fire_time(None, datetime.fromtimestamp(since, UTC))
    count = 0
    while when is not None and when <= end and count < MAX_FIRE_TIMES:
        count += 1
        when = trigger.get_next_fire_time(when, when + timedelta(seconds=1))
    return count


def _record(r: DrillRecord) -> dict[str, Any]:
    return {
        "started_at": _iso(r.started_at),
        "outcome": r.outcome,
        "duration_seconds": round(r.duration_seconds, 3),
        "rto_objective_seconds": r.rto_objective_seconds,
        "point": r.point,
        "recovered_to": None if r.recovered_to is None else _iso(r.recovered_to),
        "phases": {k: round(v, 3) for k, v in r.phases.items()},
        "phase_bytes": r.phase_bytes,
        "backup": r.backup,
        "restore_path": r.path,
        "measured_data_loss_seconds": r.measured_data_loss_seconds,
        "summary": r.summary,
        "drwatch_version": r.version,
    }


def _how_made(
    config: Config, skipped: int, compliance: dict[str, Compliance], since: float, now: float
) -> list[str]:
    covered = max((c.minutes for c in compliance.values()), default=0)
    span_minutes = max(1, int((now - since) / 60))
    lines = [
        f"From drwatch's records in {config.state_dir}: drill-history.jsonl (every drill's "
        "record, written when it ended) and exposure-record.jsonl (each scenario's RPO exposure "
        "against its objective, once a minute).",
        f"The exposure record covers {covered} of the period's {span_minutes} minutes "
        f"({covered / span_minutes:.1%}).",
        "Schedule compliance: kept when no stretch without a passing drill (from the period's "
        "start or the first record, to now) is longer than the scenario's max_age.",
        "RPO: a minute is within objective when the exposure was measured and at most the RPO; "
        "an unmeasured minute counts against it.",
    ]
    if skipped:
        lines.append(f"{skipped} record line(s) could not be read and are not counted.")
    return lines


def _integrity(path: Path) -> dict[str, Any]:
    """Whether the drill history's chain holds: each break is a record edited, inserted or
    deleted after it was written (said with the time of the record after it)."""
    found = check(path)
    return {
        "records": found.lines,
        "unchained": found.unchained,
        "intact": not found.breaks,
        "breaks": [{"line": n, "why": why} for n, why in found.breaks],
    }


def _chain_said(integrity: dict[str, Any]) -> str:
    state = (
        "intact." if integrity["intact"]
        else f"broken in {len(integrity['breaks'])} place(s), said in the verdict."
    )  # fmt: skip
    return (
        f"The drill history's {integrity['records']} record lines are chained (each holds the "
        f"SHA-256 of the line before it): {state}"
    )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
