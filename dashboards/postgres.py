"""PostgreSQL: connections, archiving, replication and the data checks, over time."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import (
    GREEN_RED,
    TARGET,
    new_dashboard,
    q,
    stat_panel,
    timeseries_panel,
)


def build() -> Dashboard:
    dashboard = new_dashboard(
        "drwatch-postgres",
        "drwatch / PostgreSQL",
        "The runbook's PostgreSQL checks over time: connection states and saturation, WAL "
        "archiving, replication, slots, pg_wal, checksum failures, data freshness, gaps, orphans "
        "and group counts.",
    )
    for row in (_connections, _wal_archiving, _replication, _slots_and_storage, _data):
        dashboard = row(dashboard)
    return dashboard


def _connections(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Connections"))
        .with_panel(
            timeseries_panel(
                "Sessions by state",
                "Client sessions by pg_stat_activity state (drwatch's own excluded).",
                q(f"drwatch_pg_connections{{{TARGET}}}", "{{target}} {{state}}"),
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Utilisation vs saturation ratio",
                "Sessions over the slots open to non-superusers; dashed: the configured ratio "
                "(remediation's trigger when it is enabled).",
                q(f"drwatch_pg_connection_utilization_ratio{{{TARGET}}}", "{{target}}"),
                q(
                    f"drwatch_pg_connection_saturation_threshold_ratio{{{TARGET}}}",
                    "{{target}} ratio",
                    ref="B",
                ),
                unit="percentunit",
                dashed_refs=("B",),
            )
        )
        .with_panel(
            timeseries_panel(
                "Idle sessions",
                "Sessions idle for longer than the idle threshold (the runbook's kill "
                "candidates), and sessions idle in a transaction (they hold locks and block "
                "vacuum).",
                q(
                    f"drwatch_pg_idle_connections_over_threshold{{{TARGET}}}",
                    "{{target}} idle over threshold",
                ),
                q(
                    f'drwatch_pg_connections{{{TARGET}, state=~"idle in transaction.*"}}',
                    "{{target}} {{state}}",
                    ref="B",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Oldest transaction and idle-in-transaction",
                "Age of the longest open transaction, and of the longest idle-in-transaction wait.",
                q(f"drwatch_pg_oldest_transaction_seconds{{{TARGET}}}", "{{target}} transaction"),
                q(
                    f"drwatch_pg_oldest_idle_in_transaction_seconds{{{TARGET}}}",
                    "{{target}} idle in transaction",
                    ref="B",
                ),
                unit="s",
            )
        )
    )


def _wal_archiving(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("WAL archiving"))
        .with_panel(
            timeseries_panel(
                "Archiver throughput and failures",
                "Segments archived and archive_command failures per second (pg_stat_archiver).",
                q(
                    f"rate(drwatch_pg_archiver_archived_total{{{TARGET}}}[$__rate_interval])",
                    "{{target}} archived",
                ),
                q(
                    f"rate(drwatch_pg_archiver_failed_total{{{TARGET}}}[$__rate_interval])",
                    "{{target}} failed",
                    ref="B",
                ),
                unit="ops",
                w=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Unarchived WAL",
                "WAL written but not yet archived: PITR's data at risk, in bytes.",
                q(f"drwatch_pg_unarchived_wal_bytes{{{TARGET}}}", "{{target}}"),
                unit="bytes",
                w=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Segments waiting (.ready)",
                "Segments waiting in archive_status, and how long the oldest has waited.",
                q(f"drwatch_pg_archive_ready_files{{{TARGET}}}", "{{target}} files"),
                q(
                    f"drwatch_pg_archive_oldest_ready_age_seconds{{{TARGET}}}",
                    "{{target}} oldest (s)",
                    ref="B",
                ),
                w=8,
            )
        )
    )


def _replication(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Replication"))
        .with_panel(
            timeseries_panel(
                "Replication lag",
                "Per standby: replay lag as pg_stat_replication reports it.",
                q(f"drwatch_pg_replication_lag_seconds{{{TARGET}}}", "{{target}} {{standby}}"),
                unit="s",
            )
        )
        .with_panel(
            stat_panel(
                "Standbys",
                "Connected standbys by sync state; primary_failover's RPO 0 needs a streaming "
                "synchronous one.",
                q(f"drwatch_pg_replication_standbys{{{TARGET}}}", "{{target}} {{sync_state}}"),
                w=12,
                h=8,
            )
        )
    )


def _slots_and_storage(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Replication slots, pg_wal and page checksums"))
        .with_panel(
            timeseries_panel(
                "WAL held back by slots",
                "Per slot: WAL from its restart_lsn to now; an inactive slot holding more than "
                "the dashed threshold fills the disk (or is lost under max_slot_wal_keep_size).",
                q(
                    f"drwatch_pg_replication_slot_retained_bytes{{{TARGET}}}",
                    "{{target}} {{slot}}",
                ),
                q(
                    f"drwatch_pg_replication_slot_retained_bytes_threshold{{{TARGET}}}",
                    "{{target}} threshold",
                    "B",
                ),
                q(
                    f"drwatch_pg_replication_slot_safe_wal_bytes{{{TARGET}}}",
                    "{{target}} {{slot}} before it is lost",
                    "C",
                ),
                unit="bytes",
                dashed_refs=("B",),
            )
        )
        .with_panel(
            stat_panel(
                "Slots inactive or lost",
                "Slots without a consumer, and slots the server invalidated (wal_status lost: "
                "the consumer can never catch up).",
                q(
                    f"sum by (target) (1 - drwatch_pg_replication_slot_active{{{TARGET}}})",
                    "{{target}} inactive",
                ),
                q(
                    "sum by (target) "
                    f'(drwatch_pg_replication_slot_wal_status{{{TARGET}, status="lost"}})',
                    "{{target}} lost",
                    "B",
                ),
                q(
                    f"drwatch_pg_replication_slots_unlabelled{{{TARGET}}}",
                    "{{target}} beyond max_slots",
                    "C",
                ),
                q(
                    f"drwatch_pg_replication_slots_unlabelled_retained_bytes{{{TARGET}}}",
                    "{{target}} bytes held beyond max_slots",
                    "D",
                ),
                steps=GREEN_RED,
                w=12,
                h=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "pg_wal size and WAL rate",
                "Files in pg_wal (archiving or slots holding WAL make it grow) and WAL written "
                "per second.",
                q(f"drwatch_pg_wal_directory_bytes{{{TARGET}}}", "{{target}} pg_wal"),
                q(
                    f"drwatch_pg_wal_rate_bytes_per_second{{{TARGET}}}",
                    "{{target}} per second",
                    "B",
                ),
                unit="bytes",
            )
        )
        .with_panel(
            stat_panel(
                "Checksum failures and timeline",
                "Data pages that failed their checksum (any is storage corruption), and the "
                "timeline (it changes with each promotion).",
                q(
                    f"sum by (target) (drwatch_pg_checksum_failures_total{{{TARGET}}})",
                    "{{target}} checksum failures",
                ),
                q(f"drwatch_pg_timeline{{{TARGET}}}", "{{target}} timeline", "B"),
                q(
                    f"drwatch_pg_data_checksums_enabled{{{TARGET}}}",
                    "{{target}} data checksums on",
                    "C",
                ),
                q(f"drwatch_pg_wal_directory_files{{{TARGET}}}", "{{target}} files in pg_wal", "D"),
                w=12,
                h=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Time until a slot is lost",
                "At the current WAL rate, how long until max_slot_wal_keep_size invalidates each "
                "slot whose consumer stopped.",
                q(
                    f"drwatch_pg_replication_slot_exposure_seconds{{{TARGET}}}",
                    "{{target}} {{slot}}",
                ),
                unit="s",
            )
        )
    )


def _data(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Data"))
        .with_panel(
            timeseries_panel(
                "Newest row age vs allowed",
                "Age of each watched table's newest row; dashed: its configured max_age.",
                q(f"drwatch_table_newest_row_age_seconds{{{TARGET}}}", "{{target}} {{table}}"),
                q(
                    f"drwatch_table_max_age_seconds{{{TARGET}}}",
                    "{{target}} {{table}} max",
                    ref="B",
                ),
                unit="s",
                dashed_refs=("B",),
            )
        )
        .with_panel(
            timeseries_panel(
                "Rows per day",
                "Rows created per day (daily_counts): a day far below its neighbours is lost or "
                "unwritten data.",
                q(f"drwatch_table_rows{{{TARGET}}}", "{{target}} {{table}} {{window}}"),
            )
        )
        .with_panel(
            stat_panel(
                "Gaps",
                "Intervals longer than the configured threshold with no rows, within the lookback.",
                q(f"drwatch_table_gaps{{{TARGET}}}", "{{target}} {{table}}"),
                steps=GREEN_RED,
            )
        )
        .with_panel(
            stat_panel(
                "Largest gap",
                "The longest interval without rows within the lookback.",
                q(f"drwatch_table_largest_gap_seconds{{{TARGET}}}", "{{target}} {{table}}"),
                unit="s",
            )
        )
        .with_panel(
            stat_panel(
                "Orphan rows",
                "Child rows whose parent is missing (referential integrity).",
                q(
                    f"drwatch_table_orphan_rows{{{TARGET}}}",
                    "{{target}} {{table}}.{{column}}",
                ),
                steps=GREEN_RED,
                w=12,
            )
        )
        .with_panel(
            timeseries_panel(
                "Rows per group",
                "Row counts per group (top N plus other), as the runbook's knowledge-mound check.",
                q(
                    f"drwatch_table_group_rows{{{TARGET}}}",
                    "{{target}} {{table}} {{group}}",
                ),
                w=24,
            )
        )
        .with_panel(
            timeseries_panel(
                "Verification cost",
                "Each verification item's time in its last run (incremental: what changed; a "
                "full sweep daily), and the standby's replay lag when verification reads one.",
                q(
                    f"drwatch_verification_item_duration_seconds{{{TARGET}}}",
                    "{{target}} {{item}}",
                ),
                q(
                    f"drwatch_verification_replay_lag_seconds{{{TARGET}}}",
                    "{{target}} standby replay lag",
                    "B",
                ),
                unit="s",
            )
        )
        .with_panel(
            stat_panel(
                "Verification source and sweeps",
                "1 when verification reads a standby; time since each item last read its "
                "tables in full.",
                q(f"drwatch_verification_on_standby{{{TARGET}}}", "{{target}} on a standby"),
                q(
                    "time() - drwatch_verification_item_last_full_sweep_timestamp_seconds"
                    f"{{{TARGET}}}",
                    "{{target}} {{item}} swept",
                    "B",
                ),
                w=12,
                h=8,
            )
        )
    )
