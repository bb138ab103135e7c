"""What the report proves, mapped to the controls auditors ask about: SOC 2 (2017 Trust Services
Criteria, availability) A1.2 and A1.3, ISO/IEC 27001:2022 Annex A 8.13 and 5.30. Each row points
at the records it rests on (the scenario's drills and exposure, by anchor)."""

from __future__ import annotations

from typing import Any

# (framework, control, what it asks, the scenarios whose records answer it)
CONTROLS = (
    ("SOC 2", "A1.2", "data backup processes and recovery infrastructure are in place and "
     "monitored", ("full_restore", "cross_region", "pitr", "redis")),
    ("SOC 2", "A1.3", "recovery plan procedures supporting system recovery are tested",
     ("full_restore", "pitr", "cross_region", "redis", "primary_failover")),
    ("ISO/IEC 27001:2022", "A.8.13", "information backup: backup copies maintained and "
     "regularly tested", ("full_restore", "cross_region", "pitr", "redis")),
    ("ISO/IEC 27001:2022", "A.5.30", "ICT readiness for business continuity: planned, tested "
     "against continuity objectives (RTO, RPO)", ("pitr", "full_restore", "cross_region",
                                                  "primary_failover", "redis")),
)  # fmt: skip


def anchor(target: str, scenario: str) -> str:
    return f"records-{target}-{scenario}"


def controls(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per control: what it asks, and per target × scenario what the records show."""
    verdicts = {(v["target"], v["scenario"]): v for v in doc["verdicts"]}
    rows = []
    for framework, control, asks, scenarios in CONTROLS:
        evidence = []
        for target in doc["targets"]:
            for s in target["scenarios"]:
                if s["scenario"] not in scenarios:
                    continue
                v = verdicts[(target["target"], s["scenario"])]
                drills = s["drills"]
                evidence.append(
                    {
                        "target": target["target"],
                        "scenario": s["scenario"],
                        "anchor": anchor(target["target"], s["scenario"]),
                        "shows": (
                            f"{drills['passed']} of {drills['run']} drills passed; RTO "
                            f"{v['rto']}; RPO {v['rpo']}; tested on schedule: "
                            + {True: "yes", False: "no", None: "not scheduled"}[
                                v["tested_on_schedule"]
                            ]
                        ),
                    }
                )
        rows.append(
            {"framework": framework, "control": control, "asks": asks, "evidence": evidence}
        )
    return rows
