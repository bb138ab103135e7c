"""The report's first lines: per target and scenario, the objective, whether it was met, whether
it was tested on schedule, and how much of the period the record covers. A period the record does
not cover is "not measured", never "100% within objective"."""

from __future__ import annotations

from typing import Any

from core.durations import format_duration

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"


def verdicts(targets: list[dict[str, Any]], period_minutes: int) -> list[dict[str, Any]]:
    """One verdict per target × scenario of the report's document."""
    out = []
    for target in targets:
        for s in target["scenarios"]:
            rto, rpo, schedule = s["rto"], s["rpo"], s.get("schedule")
            recorded = int(rpo.get("minutes_recorded") or 0)
            coverage = min(1.0, recorded / max(1, period_minutes))
            out.append(
                {
                    "target": target["target"],
                    "scenario": s["scenario"],
                    "rto_objective_seconds": rto["objective_seconds"],
                    "rpo_objective_seconds": rpo["objective_seconds"],
                    "rto": _rto(rto),
                    "rpo": _rpo(rpo, recorded),
                    "tested_on_schedule": None if schedule is None else bool(schedule["kept"]),
                    "record_coverage": round(coverage, 6),
                }
            )
    return out


def _rto(rto: dict[str, Any]) -> str:
    within = rto["within_objective"]
    return NOT_MEASURED if within is None else MET if within else NOT_MET


def _rpo(rpo: dict[str, Any], recorded: int) -> str:
    """Met when every minute recorded was measured within the objective; minutes unmeasured
    count against it; no minute recorded is not measured."""
    if not recorded or rpo.get("ratio") is None or rpo["objective_seconds"] is None:
        return NOT_MEASURED
    return MET if rpo["ratio"] >= 1.0 else NOT_MET


def line(v: dict[str, Any]) -> str:
    """`app / pitr: RTO 30m met; RPO 5m not met (...); tested on schedule: yes; record covers
    98.2% of the period`."""
    rto = v["rto_objective_seconds"]
    rpo = v["rpo_objective_seconds"]
    scheduled = {True: "yes", False: "NO", None: "not scheduled"}[v["tested_on_schedule"]]
    return (
        f"{v['target']} / {v['scenario']}: "
        f"RTO {_objective(rto)} {v['rto']}; RPO {_objective(rpo)} {v['rpo']}; "
        f"tested on schedule: {scheduled}; the record covers {v['record_coverage']:.1%} of the "
        "period"
    )


def _objective(seconds: float | None) -> str:
    return "(none set)" if seconds is None else format_duration(seconds)
