"""The recovery dashboard's drill rows: "Restore drills" (the measured RTO beside the objective,
phases, last pass) and "Testing schedule and RTO forecast" (is the runbook's Backup Testing
Schedule kept per scenario, when is the next drill, what did drills find, and will the RTO still
hold at the size the backups grow to)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import TARGET, q, stat_panel, states, timeseries_panel

SCHEDULE_KEPT = states({"0": ("kept", "green"), "1": ("OVERDUE", "red")})


def restore_drills(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Restore drills"))
        .with_panel(
            timeseries_panel(
                "Measured RTO vs objective",
                "Solid: how long the last passing restore drill took to a restored, checked, "
                "connectable database. Dashed: that scenario's RTO.",
                q(f"drwatch_rto_measured_seconds{{{TARGET}}}", "{{target}} {{scenario}}"),
                q(
                    f"drwatch_rto_objective_seconds{{{TARGET}}} "
                    "and on(target, scenario) drwatch_rto_measured_seconds",
                    "{{target}} {{scenario}} RTO",
                    ref="B",
                ),
                unit="s",
                dashed_refs=("B",),
                w=12,
            )
        )
        .with_panel(
            timeseries_panel(
                "Drill phases",
                "Where the last drill's time went: downloading the backup, restoring it, "
                "checking the copy.",
                q(
                    f"drwatch_drill_phase_duration_seconds{{{TARGET}}}",
                    "{{target}} {{scenario}} {{phase}}",
                ),
                unit="s",
                w=6,
            )
        )
        .with_panel(
            stat_panel(
                "Last passing drill",
                "Time since the last drill that restored and checked a copy.",
                q(
                    f"time() - drwatch_drill_last_success_timestamp_seconds{{{TARGET}}}",
                    "{{target}} {{scenario}}",
                ),
                unit="s",
                w=3,
            )
        )
        .with_panel(
            stat_panel(
                "Last drill",
                "Whether the last drill ended with a restored, checked, connectable database.",
                q(f"drwatch_drill_success{{{TARGET}}}", "{{target}} {{scenario}}"),
                mappings=states({"1": ("passed", "green"), "0": ("FAILED", "red")}),
                w=3,
            )
        )
    )


def drill_schedule(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Testing schedule and RTO forecast"))
        .with_panel(
            stat_panel(
                "Runbook testing schedule",
                "Per scenario, the runbook's test and frequency: kept while a drill passed "
                "within the scenario's max_age (DrwatchDrillOverdue otherwise).",
                q(
                    f"drwatch_drill_overdue{{{TARGET}}} * on(target, scenario) "
                    f"group_left(test, frequency) drwatch_drill_schedule_info{{{TARGET}}}",
                    "{{scenario}}: {{test}} ({{frequency}})",
                ),
                mappings=SCHEDULE_KEPT,
                w=6,
            )
        )
        .with_panel(
            stat_panel(
                "Next drill",
                "When the scheduler runs each scenario's drill next.",
                q(
                    f"drwatch_drill_next_run_timestamp_seconds{{{TARGET}}} - time()",
                    "{{scenario}}",
                ),
                unit="s",
                w=4,
            )
        )
        .with_panel(
            stat_panel(
                "Drills by outcome",
                "Since drwatch began keeping counts: passed, failed (the backup or its "
                "restore), deferred (no capacity: drills.max_concurrent, disk_budget).",
                q(
                    f"sum by (outcome) (drwatch_drills_total{{{TARGET}}})",
                    "{{outcome}}",
                ),
                w=4,
            )
        )
        .with_panel(
            timeseries_panel(
                "RTO forecast vs objective",
                "The RTO a drill would measure at the backup size the store's trend gives in "
                "30 and 90 days (each phase's seconds per byte of the last passing drills). "
                "Dashed: the objective. DrwatchRTOForecastBreach tickets the 30-day one.",
                q(
                    f"drwatch_rto_forecast_seconds{{{TARGET}}}",
                    "{{scenario}} in {{horizon}}",
                ),
                q(
                    f"drwatch_rto_objective_seconds{{{TARGET}}} "
                    "and on(target, scenario) drwatch_rto_forecast_seconds",
                    "{{scenario}} RTO",
                    ref="B",
                ),
                unit="s",
                dashed_refs=("B",),
                w=10,
            )
        )
    )
