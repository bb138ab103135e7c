"""Recovery overview: per target, is every scenario within its objective, and why not."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.stat import Panel as StatPanel

from dashboards.drills import drill_schedule, restore_drills
from dashboards.objectives import objectives
from dashboards.panels import (
    GREEN_RED,
    TARGET,
    new_dashboard,
    q,
    stat_panel,
    states,
    table_panel,
    thresholds,
    timeseries_panel,
)

FLAG_OK = states({"1": ("yes", "green"), "0": ("NO", "red")})
FLAG_BAD = states({"0": ("no", "green"), "1": ("YES", "red")})

# Per scenario: 0 within its RPO, 1 breached, 2 not measurable (objective with no exposure).
OBJECTIVE_MET = f"""
(drwatch_rpo_exposure_seconds{{{TARGET}}} > bool on(target, scenario) drwatch_rpo_objective_seconds)
or on(target, scenario) (drwatch_rpo_objective_seconds{{{TARGET}}} * 0 + 2)
""".strip()


def build() -> Dashboard:
    dashboard = new_dashboard(
        "drwatch-recovery",
        "drwatch / Recovery overview",
        "Per target: every recovery scenario's data at risk against its RPO, and the backups, "
        "WAL archive, cross-region copy and Redis persistence behind it.",
    )
    rows = (
        _recovery_objectives,
        objectives,
        restore_drills,
        drill_schedule,
        _backups,
        _base_backups,
        _wal_archive_and_cross_region_copy,
        _redis,
    )
    for row in rows:
        dashboard = row(dashboard)
    return dashboard


def _rpo_per_scenario() -> StatPanel:
    return stat_panel(
        "RPO per scenario",
        "Green: the data at risk is within the scenario's RPO. Red: breached. Orange: "
        "drwatch cannot measure it right now (see the drwatch dashboard).",
        q(OBJECTIVE_MET, "{{target}} {{scenario}}"),
        mappings=states(
            {
                "0": ("within RPO", "green"),
                "1": ("RPO BREACHED", "red"),
                "2": ("unmeasured", "orange"),
            }
        ),
        w=12,
        h=6,
    )


def _recovery_objectives(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Recovery objectives"))
        .with_panel(_rpo_per_scenario())
        .with_panel(
            stat_panel(
                "Data at risk now",
                "drwatch_rpo_exposure_seconds: how much data (in time) a recovery through each "
                "scenario would lose if it had to start now.",
                q(f"drwatch_rpo_exposure_seconds{{{TARGET}}}", "{{target}} {{scenario}}"),
                unit="s",
                w=12,
                h=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Data at risk vs objective",
                "Solid: data at risk per scenario. Dashed red: that scenario's RPO; a solid line "
                "above its dashed one is a breach.",
                q(f"drwatch_rpo_exposure_seconds{{{TARGET}}}", "{{target}} {{scenario}}"),
                q(
                    f"drwatch_rpo_objective_seconds{{{TARGET}}}",
                    "{{target}} {{scenario}} RPO",
                    ref="B",
                ),
                unit="s",
                dashed_refs=("B",),
                w=16,
            )
        )
        .with_panel(
            table_panel(
                "drwatch alerts",
                "Alerts of the shipped rules for these targets, pending and firing.",
                q(f"ALERTS{{{TARGET}}}"),
                w=8,
            )
        )
        .with_panel(
            stat_panel(
                "Restore read time vs RTO",
                "How long the last full verification of a backup took (a streamed pg_restore: a "
                "lower bound of a real restore), against the full_restore RTO.",
                q(f"drwatch_backup_verification_duration_seconds{{{TARGET}}}", "{{target}} read"),
                q(
                    f'drwatch_rto_objective_seconds{{{TARGET}, scenario="full_restore"}}',
                    "{{target}} RTO",
                    ref="B",
                ),
                unit="s",
                w=8,
            )
        )
        .with_panel(
            stat_panel(
                "RTO objectives",
                "The configured recovery time objective per scenario.",
                q(f"drwatch_rto_objective_seconds{{{TARGET}}}", "{{target}} {{scenario}}"),
                unit="s",
                w=16,
            )
        )
    )


def _backups(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Backups"))
        .with_panel(
            stat_panel(
                "Newest backup age",
                "Time since the newest backup in the store was taken.",
                q(f"time() - drwatch_backup_newest_timestamp_seconds{{{TARGET}}}", "{{target}}"),
                unit="s",
            )
        )
        .with_panel(
            stat_panel(
                "Newest backup verified",
                "Whether the newest backup passed drwatch's integrity verification.",
                q(f"drwatch_backup_newest_verified{{{TARGET}}}", "{{target}}"),
                mappings=FLAG_OK,
            )
        )
        .with_panel(
            stat_panel(
                "Last verified backup",
                "Time since the newest backup that passed verification was taken.",
                q(
                    f"time() - drwatch_backup_last_verified_timestamp_seconds{{{TARGET}}}",
                    "{{target}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            stat_panel(
                "Backups in retention",
                "Backups within the retention window; fewer than one per day of it is a shortfall.",
                q(f"drwatch_backups_in_retention{{{TARGET}}}", "{{target}}"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Backups being written",
                "What the dumps and base backups still running have written so far: a line "
                "that stops rising before it drops to zero is a hung job (DrwatchDumpStuck, "
                "DrwatchBackupStuck).",
                q(f"drwatch_backup_running_bytes{{{TARGET}}}", "{{target}} dumps"),
                q(
                    f"drwatch_base_backup_running_bytes{{{TARGET}}}",
                    "{{target}} base backups",
                    ref="B",
                ),
                unit="bytes",
                w=24,
            )
        )
    )


def _base_backups(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Physical backups and recovery window"))
        .with_panel(
            timeseries_panel(
                "Recovery window",
                "How far back point-in-time recovery reaches (from the oldest base backup whose "
                "WAL is continuous to now) against the retention it should cover.",
                q(f"drwatch_recovery_window_seconds{{{TARGET}}}", "{{target}} window"),
                q(
                    f"drwatch_recovery_window_objective_seconds{{{TARGET}}}",
                    "{{target}} retention",
                    "B",
                ),
                q(
                    f"time() - drwatch_recovery_window_start_timestamp_seconds{{{TARGET}}}",
                    "{{target}} oldest recoverable point",
                    "C",
                ),
                unit="s",
                dashed_refs=("B",),
            )
        )
        .with_panel(
            stat_panel(
                "Newest base backup age",
                "Time since the newest base backup of each type finished.",
                q(
                    f"time() - drwatch_base_backup_newest_timestamp_seconds{{{TARGET}}}",
                    "{{target}} {{type}}",
                ),
                unit="s",
                w=12,
                h=8,
            )
        )
        .with_panel(
            stat_panel(
                "Base backups",
                "Base backups in the catalogue, by type.",
                q(f"drwatch_base_backups{{{TARGET}}}", "{{target}} {{type}}"),
            )
        )
        .with_panel(
            stat_panel(
                "Newest base backup size",
                "The size of the cluster the newest base backup restores.",
                q(f"drwatch_base_backup_newest_size_bytes{{{TARGET}}}", "{{target}}"),
                unit="bytes",
            )
        )
        .with_panel(
            stat_panel(
                "Newest base backup verified",
                "Whether the newest pg_basebackup backup passed pg_verifybackup.",
                q(f"drwatch_base_backup_newest_verified{{{TARGET}}}", "{{target}}"),
                mappings=FLAG_OK,
            )
        )
        .with_panel(
            stat_panel(
                "Base backups that are no recovery point",
                "Marked failed by their tool, unreadable, or missing part of their chain.",
                q(f"drwatch_base_backups_failed{{{TARGET}}}", "{{target}}"),
                steps=GREEN_RED,
            )
        )
        .with_panel(
            stat_panel(
                "Base backups running or waiting for WAL",
                "Not failed, not yet recovery points: running, or copied with their WAL not yet "
                "archived (barman's WAITING_FOR_WALS).",
                q(f"drwatch_base_backups_incomplete{{{TARGET}}}", "{{target}} {{state}}"),
            )
        )
    )


def _wal_archive_and_cross_region_copy(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("WAL archive and cross-region copy"))
        .with_panel(
            stat_panel(
                "WAL archive gaps",
                "Segments missing from the WAL archive since the newest base backup: point-in-"
                "time recovery cannot cross them.",
                q(f"drwatch_wal_archive_missing_segments{{{TARGET}}}", "{{target}}"),
                steps=GREEN_RED,
            )
        )
        .with_panel(
            stat_panel(
                "WAL timeline",
                "The current timeline recovery follows; a new one after every failover or PITR. "
                "Timelines with WAL but no .history file cannot be followed (red).",
                q(f"drwatch_wal_archive_timeline{{{TARGET}}}", "{{target}} timeline"),
                q(
                    f"drwatch_wal_archive_timelines_without_history{{{TARGET}}}",
                    "{{target}} without history",
                    ref="B",
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Archiver failing",
                "archive_command's last attempt failed after its last success.",
                q(f"drwatch_pg_archiver_failing{{{TARGET}}}", "{{target}}"),
                mappings=FLAG_BAD,
            )
        )
        .with_panel(
            stat_panel(
                "Unarchived WAL",
                "WAL written but not yet in the archive: what PITR would lose now.",
                q(f"drwatch_pg_unarchived_wal_bytes{{{TARGET}}}", "{{target}}"),
                unit="bytes",
                steps=thresholds((None, "green"), (16 * 1024 * 1024, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Cross-region copy lag",
                "How far the cross-region copy is behind the primary backup store.",
                q(f"drwatch_replica_copy_lag_seconds{{{TARGET}}}", "{{target}}"),
                unit="s",
            )
        )
    )


def _redis(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Redis"))
        .with_panel(
            stat_panel(
                "Redis last save",
                "Time since Redis last saved a snapshot (or started, whichever is later).",
                q(
                    f"time() - drwatch_redis_last_save_timestamp_seconds{{{TARGET}}}",
                    "{{target}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            stat_panel(
                "Last BGSAVE succeeded",
                "rdb_last_bgsave_status: a failing background save means nothing new is persisted.",
                q(f"drwatch_redis_last_bgsave_ok{{{TARGET}}}", "{{target}}"),
                mappings=FLAG_OK,
            )
        )
        .with_panel(
            stat_panel(
                "Changes since last save",
                "Writes Redis would lose if it restarted now.",
                q(f"drwatch_redis_changes_since_last_save{{{TARGET}}}", "{{target}}"),
            )
        )
        .with_panel(
            stat_panel(
                "Newest snapshot verified",
                "Whether redis-check-rdb accepted the newest copied snapshot.",
                q(f"drwatch_redis_snapshot_newest_verified{{{TARGET}}}", "{{target}}"),
                mappings=FLAG_OK,
            )
        )
    )
