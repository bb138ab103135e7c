"""drwatch itself: is it measuring, how long its checks take, and what remediation did."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import (
    TARGET,
    new_dashboard,
    q,
    stat_panel,
    states,
    status_timeline,
    table_panel,
    timeseries_panel,
)

# Scrape series of the Prometheus jobs that scrape a drwatch, whatever the jobs are called.
DRWATCH_JOBS = "on(instance, job) group_left() max by (instance, job) (drwatch_build_info)"


def build() -> Dashboard:
    dashboard = new_dashboard(
        "drwatch-self",
        "drwatch / drwatch",
        "Whether drwatch is measuring: check status, durations and errors, scrape health, "
        "configuration, and every remediation decision.",
    )
    for row in (_checks, _scrapes_and_configuration, _remediation):
        dashboard = row(dashboard)
    return dashboard


def _checks(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Checks"))
        .with_panel(
            status_timeline(
                "Check status",
                "Each check's status over time: OK, WARNING, CRITICAL, UNKNOWN.",
                q(f"drwatch_check_status{{{TARGET}}}", "{{target}} {{check}}"),
                states(
                    {
                        "0": ("OK", "green"),
                        "1": ("WARNING", "yellow"),
                        "2": ("CRITICAL", "red"),
                        "3": ("UNKNOWN", "purple"),
                    }
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Check duration",
                "How long each check's last run took, against its interval and deadline.",
                q(f"drwatch_check_duration_seconds{{{TARGET}}}", "{{target}} {{check}}"),
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Check errors by reason",
                "Failed runs per check and reason (connect, query, permission, timeout, config, "
                "internal).",
                q(
                    f"sum by (target, check, reason) "
                    f"(increase(drwatch_check_errors_total{{{TARGET}}}[$__rate_interval]))",
                    "{{target}} {{check}} {{reason}}",
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Since last success",
                "Time since each check last measured everything.",
                q(
                    f"time() - drwatch_check_last_success_timestamp_seconds{{{TARGET}}}",
                    "{{target}} {{check}}",
                ),
                unit="s",
                w=24,
                h=6,
            )
        )
    )


def _scrapes_and_configuration(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Scrapes and configuration"))
        .with_panel(
            timeseries_panel(
                "Scrape duration",
                "How long Prometheus takes to scrape each drwatch (checks never run during a "
                "scrape: it reads stored results).",
                q(f"scrape_duration_seconds * {DRWATCH_JOBS}", "{{instance}}"),
                unit="s",
                w=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Samples per scrape",
                "Series each drwatch exposes.",
                q(f"scrape_samples_scraped * {DRWATCH_JOBS}", "{{instance}}"),
                w=8,
            )
        )
        .with_panel(
            stat_panel(
                "Config reload",
                "Whether the last configuration (re)load succeeded; a rejected reload keeps the "
                "running config.",
                q("drwatch_config_last_reload_successful", "{{instance}}"),
                mappings=states({"1": ("OK", "green"), "0": ("REJECTED", "red")}),
                w=8,
                h=8,
            )
        )
        .with_panel(
            table_panel(
                "Monitored sections",
                "Each configured section: 1 monitored, 0 off (its connection string is empty).",
                q(f"drwatch_config_section_enabled{{{TARGET}}}"),
                w=12,
            )
        )
        .with_panel(
            table_panel(
                "drwatch instances",
                "Every drwatch Prometheus scrapes, and its version.",
                q("drwatch_build_info"),
                w=12,
            )
        )
    )


def _remediation(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Remediation"))
        .with_panel(
            timeseries_panel(
                "Remediation decisions",
                "Every decision by outcome: executed, dry_run, skipped (a guard, limit, cooldown "
                "or the kill switch), failed.",
                q(
                    f"sum by (target, action, outcome) "
                    f"(increase(drwatch_remediation_actions_total{{{TARGET}}}[$__rate_interval]))",
                    "{{target}} {{action}} {{outcome}}",
                ),
                w=12,
            )
        )
        .with_panel(
            stat_panel(
                "Leader",
                "Whether this drwatch holds the target's remediation lock (only the leader acts).",
                q(f"drwatch_remediation_leader{{{TARGET}}}", "{{target}} {{instance}}"),
                mappings=states({"1": ("leader", "green"), "0": ("standby", "blue")}),
                w=4,
                h=8,
            )
        )
        .with_panel(
            stat_panel(
                "Mode",
                "Dry run decides and reports only; acting terminates sessions and starts saves.",
                q(f"drwatch_remediation_dry_run{{{TARGET}}}", "{{target}}"),
                mappings=states({"1": ("dry run", "blue"), "0": ("ACTING", "orange")}),
                w=4,
                h=8,
            )
        )
        .with_panel(
            stat_panel(
                "Kill switch",
                "Engaged by SIGUSR1 or the kill_switch_path file: nothing is executed.",
                q(f"drwatch_remediation_kill_switch{{{TARGET}}}", "{{target}}"),
                mappings=states({"0": ("off", "green"), "1": ("ENGAGED", "red")}),
                w=4,
                h=8,
            )
        )
    )
