"""The recovery dashboard's "Objectives" row: each scenario run as an SLO (alerts/slo.yml's
recorded series): the 30-day error budget left, how fast it burns, the share of time within
objective and the worst exposure of 30 days."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import TARGET, q, stat_panel, thresholds, timeseries_panel

LEGEND = "{{scenario}} {{sloth_slo}}"


def objectives(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Objectives"))
        .with_panel(
            stat_panel(
                "Error budget left (30 d)",
                "What is left of the month's error budget: (1 - SLO) of 30 days, spent by each "
                "minute outside the objective (an unmeasured minute included).",
                q(f"slo:period_error_budget_remaining:ratio{{{TARGET}}}", LEGEND),
                unit="percentunit",
                steps=thresholds((None, "red"), (0.0, "orange"), (0.25, "green")),
                w=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Burn rate",
                "How fast the budget burns, the last 5 minutes' error ratio over the budgeted "
                "one: 1 spends it in exactly 30 days; 14.4 over an hour pages.",
                q(f"slo:current_burn_rate:ratio{{{TARGET}}}", LEGEND),
                unit="short",
                w=8,
            )
        )
        .with_panel(
            stat_panel(
                "Within objective (30 d)",
                "The share of the recorded time each scenario was within its objective.",
                q(f"drwatch:slo_compliance:ratio_rate30d{{{TARGET}}}", LEGEND),
                unit="percentunit",
                w=4,
            )
        )
        .with_panel(
            stat_panel(
                "Worst exposure (30 d)",
                "The most data at risk at any time in 30 days.",
                q(f"drwatch:rpo_exposure_seconds:max_over_time30d{{{TARGET}}}", "{{scenario}}"),
                unit="s",
                w=4,
            )
        )
    )
