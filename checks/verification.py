"""Verification queries: the runbook's data checks, configured per table, identifiers quoted.

Each item runs in its own short read-only transaction under its own statement timeout, so one
broken or slow item (a renamed table, a timeout) costs that item only; the others are still
measured and reported. Orphans, daily counts and gaps read only what can have changed since the
previous run (`checks.support.incremental`), with a full sweep on a slower schedule; the numbers
are those a full run reports. `verification.dsn` moves the whole load to a standby: the check
then says which server it read and how far behind it is, and a standby further behind than
`max_replay_lag` cannot judge freshness.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from checks.base import Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support import incremental, incremental_counts
from checks.support.custom_sql import custom_specs, measure_custom
from checks.support.incremental import StateFile
from checks.support.pg import PostgresCheck, Row, end_transaction, fetch_all, fetch_one
from core.config.postgres import (
    CustomQuery,
    DailyCounts,
    Freshness,
    Gaps,
    GroupCounts,
    Orphans,
    PostgresConfig,
    VerificationOptions,
)
from core.durations import age_of, format_duration
from core.errors import CheckError
from core.humanize import count
from core.metrics import gauge

NAME = "verification"
OTHER_GROUP = "other"

TABLE_NEWEST_ROW_AGE_SECONDS = gauge(
    "drwatch_table_newest_row_age_seconds",
    "Age of the newest row by the configured timestamp column; +Inf for an empty table.",
    "table",
)
TABLE_MAX_AGE_SECONDS = gauge(
    "drwatch_table_max_age_seconds", "The configured maximum age of the newest row.", "table"
)
TABLE_ROWS = gauge(
    "drwatch_table_rows",
    'Rows per 24-hour window counted back from now (window="0-24h" is the last day).',
    "table",
    "window",
)
TABLE_GAPS = gauge(
    "drwatch_table_gaps",
    "Gaps between consecutive rows longer than the configured threshold, inside the lookback.",
    "table",
)
TABLE_LARGEST_GAP_SECONDS = gauge(
    "drwatch_table_largest_gap_seconds",
    "The longest time between consecutive rows inside the lookback window.",
    "table",
)
TABLE_GAP_THRESHOLD_SECONDS = gauge(
    "drwatch_table_gap_threshold_seconds", "The configured gap threshold.", "table"
)
TABLE_ORPHAN_ROWS = gauge(
    "drwatch_table_orphan_rows",
    "Rows whose foreign-key column points at no parent row.",
    "table",
    "column",
    "parent_table",
)
TABLE_GROUP_ROWS = gauge(
    "drwatch_table_group_rows",
    'Rows per group of the configured column, top-N groups and the rest as group="other".',
    "table",
    "column",
    "group",
)
TABLE_GROUPS = gauge(
    "drwatch_table_groups", "Distinct groups of the configured column.", "table", "column"
)

VERIFICATION_ITEM_DURATION_SECONDS = gauge(
    "drwatch_verification_item_duration_seconds",
    "How long each verification item took in the last run.",
    "item",
)
VERIFICATION_ITEM_LAST_FULL_SWEEP_TIMESTAMP_SECONDS = gauge(
    "drwatch_verification_item_last_full_sweep_timestamp_seconds",
    "When the item last read its tables in full (orphans, daily counts, gaps).",
    "item",
)
VERIFICATION_ON_STANDBY = gauge(
    "drwatch_verification_on_standby", "1 if verification read a standby (verification.dsn)."
)
VERIFICATION_REPLAY_LAG_SECONDS = gauge(
    "drwatch_verification_replay_lag_seconds",
    "How far the standby verification read was behind its primary (0 when caught up).",
)

METRICS = (
    TABLE_NEWEST_ROW_AGE_SECONDS,
    TABLE_MAX_AGE_SECONDS,
    TABLE_ROWS,
    TABLE_GAPS,
    TABLE_LARGEST_GAP_SECONDS,
    TABLE_GAP_THRESHOLD_SECONDS,
    TABLE_ORPHAN_ROWS,
    TABLE_GROUP_ROWS,
    TABLE_GROUPS,
    VERIFICATION_ITEM_DURATION_SECONDS,
    VERIFICATION_ITEM_LAST_FULL_SWEEP_TIMESTAMP_SECONDS,
    VERIFICATION_ON_STANDBY,
    VERIFICATION_REPLAY_LAG_SECONDS,
)
# Each item: its own timeout; no JIT (compiling costs more than these short queries, and row
# estimates over big tables trigger it) and no parallel workers (a monitor takes no extra cores
# of the server it watches).
_ITEM_SETTINGS = (
    "SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)
_SERVER_SQL = """
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
       END::float8 AS lag  -- NULL: behind, by how much unknown (nothing replayed yet)
"""


def _table(schema: str | None, table: str) -> sql.Composable:
    if schema:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    return sql.Identifier(table)


def _label(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)  # data findings: the check warns
    errors: list[CheckError] = field(default_factory=list)  # could not measure
    notes: list[str] = field(default_factory=list)
    lag: float | None = 0.0  # how far the server read is behind its primary (None: unknown)
    where: str = ""  # the item being measured
    swept: bool = False  # whether it read its tables in full


class VerificationCheck(PostgresCheck[None]):
    def __init__(self, pg: PostgresConfig, options: VerificationOptions, state: StateFile) -> None:
        # On a standby when verification has its own DSN: the primary runs none of it.
        read = pg.model_copy(update={"dsn": options.dsn}) if options.dsn else pg
        super().__init__(read, options, None)
        self.options = options
        self.kept = state  # what incremental items keep between runs, in state_dir
        self.item_timeout = options.item_timeout or self.statement_timeout
        self.reuses_session = not options.custom  # the user's SQL gets a session of its own

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        started = time.monotonic()
        obs = Observation(Status.OK, "")
        found = _Findings()
        server = fetch_one(conn, _SERVER_SQL, what="recovery state")
        end_transaction(conn)
        found.lag = None if server["lag"] is None else float(server["lag"])
        obs.add(VERIFICATION_ON_STANDBY, bool(server["standby"]))
        if found.lag is not None and server["standby"]:
            obs.add(VERIFICATION_REPLAY_LAG_SECONDS, found.lag)
        o = self.options
        items: list[
            tuple[str, Callable[[psycopg.Connection[Row], Any, Observation, _Findings], None], Any]
        ] = []
        items += [(f"freshness[{i}]", self._freshness, c) for i, c in enumerate(o.freshness)]
        items += [
            (f"daily_counts[{i}]", self._daily_counts, c) for i, c in enumerate(o.daily_counts)
        ]
        items += [(f"gaps[{i}]", self._gaps, c) for i, c in enumerate(o.gaps)]
        items += [(f"orphans[{i}]", self._orphans, c) for i, c in enumerate(o.orphans)]
        items += [
            (f"group_counts[{i}]", self._group_counts, c) for i, c in enumerate(o.group_counts)
        ]
        items += [(f"custom[{i}]", _custom, c) for i, c in enumerate(o.custom)]
        for where, measure, item in items:
            item_started = time.monotonic()
            found.where, found.swept = where, False
            try:
                fetch_all(conn, _ITEM_SETTINGS, (f"{int(self.item_timeout * 1000)}ms",),
                          what="item settings")  # fmt: skip
                measure(conn, item, obs, found)
            except CheckError as exc:
                if conn.broken or conn.closed:  # the server went away: no item can run
                    raise CheckError("connect", f"verification.{where}: {exc}") from None
                found.errors.append(CheckError(exc.reason, f"verification.{where}: {exc}"))
            end_transaction(conn)  # one short transaction per item; now() fresh for each
            obs.add(VERIFICATION_ITEM_DURATION_SECONDS, time.monotonic() - item_started, item=where)
            swept_at = self.kept.items.get(where, {}).get("swept_at")
            if swept_at:
                obs.add(VERIFICATION_ITEM_LAST_FULL_SWEEP_TIMESTAMP_SECONDS, swept_at, item=where)
        self.kept.save({where for where, _, _ in items})
        obs.errors = found.errors
        if found.errors:
            obs.status = Status.UNKNOWN
        elif found.problems:
            obs.status = Status.WARNING
        parts = [str(e) for e in found.errors] + found.problems
        summary = "; ".join(parts) if parts else "; ".join(found.notes) or "nothing configured"
        cost = f"cycle {(time.monotonic() - started) * 1000:.0f} ms"
        if server["standby"]:
            behind = "unknown" if found.lag is None else format_duration(found.lag)
            cost += f" on a standby, {behind} behind"
        obs.summary = f"{summary} ({cost})"
        obs.values["cycle_seconds"] = time.monotonic() - started
        return obs

    def _freshness(
        self, conn: psycopg.Connection[Row], c: Freshness, obs: Observation, f: _Findings
    ) -> None:
        query = sql.SQL(
            "SELECT EXTRACT(EPOCH FROM now() - max({col}))::float8 AS age FROM {tbl}"
        ).format(col=sql.Identifier(c.column), tbl=_table(c.schema_name, c.table))
        label = _label(c.schema_name, c.table)
        if f.lag is None or f.lag > self.options.max_replay_lag:
            # The standby is behind: its newest row says how far it is, not the application.
            behind = "behind" if f.lag is None else f"{format_duration(f.lag)} behind"
            f.notes.append(f"{label}: freshness cannot be judged, the standby is {behind}")
            obs.values[f"{label}.newest_row_age_seconds"] = None
            return
        age = fetch_all(conn, query, what=f"freshness of {c.table}")[0]["age"]
        age_s = math.inf if age is None else max(0.0, float(age))
        obs.add(TABLE_NEWEST_ROW_AGE_SECONDS, age_s, table=label)
        obs.add(TABLE_MAX_AGE_SECONDS, c.max_age, table=label)
        obs.values[f"{label}.newest_row_age_seconds"] = None if age is None else age_s
        if age is None:
            f.problems.append(f"{label} is empty")
        elif age_s > c.max_age:
            f.problems.append(
                f"{label}: newest row is {format_duration(age_s)} old "
                f"(max {format_duration(c.max_age)})"
            )
        else:
            f.notes.append(f"{label}: newest row {age_of(time.time() - age_s)} old")

    def _daily_counts(
        self, conn: psycopg.Connection[Row], c: DailyCounts, obs: Observation, f: _Findings
    ) -> None:
        counts, f.swept = incremental_counts.daily_counts(
            conn,
            _table(c.schema_name, c.table),
            c.column,
            c.days,
            c.mutable_days,
            self.kept.item(f.where),
            self.options.full_sweep_interval,
        )
        label = _label(c.schema_name, c.table)
        for days_ago, n in counts.items():
            obs.add(
                TABLE_ROWS,
                n,
                table=label,
                window=f"{days_ago * 24}-{(days_ago + 1) * 24}h",
            )
        obs.values[f"{label}.rows_last_24h"] = counts[0]

    def _gaps(self, conn: psycopg.Connection[Row], c: Gaps, obs: Observation, f: _Findings) -> None:
        # Consecutive rows by lag() over what can have changed, instead of the runbook's
        # correlated MIN(id) subquery per row (quadratic without the right index, and it assumes
        # ids are in time order).
        gaps, largest, f.swept = incremental.gaps(
            conn,
            _table(c.schema_name, c.table),
            c.column,
            c.threshold,
            c.lookback,
            self.kept.item(f.where),
            self.options.full_sweep_interval,
        )
        label = _label(c.schema_name, c.table)
        obs.add(TABLE_GAPS, gaps, table=label)
        obs.add(TABLE_LARGEST_GAP_SECONDS, largest, table=label)
        obs.add(TABLE_GAP_THRESHOLD_SECONDS, c.threshold, table=label)
        obs.values[f"{label}.gaps"] = gaps
        obs.values[f"{label}.largest_gap_seconds"] = largest
        if gaps:
            f.problems.append(
                f"{label}: {count(gaps, 'gap')} over {format_duration(c.threshold)} in the last "
                f"{format_duration(c.lookback)} (largest {format_duration(largest)})"
            )

    def _orphans(
        self, conn: psycopg.Connection[Row], c: Orphans, obs: Observation, f: _Findings
    ) -> None:
        # NOT EXISTS, not the runbook's NOT IN: NOT IN yields no rows at all as soon as the parent
        # column holds a NULL, silently reporting zero orphans.
        child, parent_table = (
            _table(c.schema_name, c.table),
            _table(c.parent_schema, c.parent_table),
        )
        orphan_rows = sql.SQL(
            "FROM {child} AS c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM {parent} AS p WHERE p.{pcol} = c.{col})"
        ).format(
            child=child,
            col=sql.Identifier(c.column),
            parent=parent_table,
            pcol=sql.Identifier(c.parent_column),
        )
        watermark = incremental.integer_watermark(conn, child, c.watermark)
        if watermark is None:  # nothing monotonic to start from: all of it, every run
            query = sql.SQL("SELECT count(*) AS n {rows}").format(rows=orphan_rows)
            n = int(fetch_all(conn, query, what=f"orphans in {c.table}")[0]["n"])
            f.swept = True
        else:
            n, f.swept = incremental.orphans(
                conn,
                sql.SQL("SELECT c.{wm} AS wm {rows}").format(
                    wm=sql.Identifier(watermark), rows=orphan_rows
                ),
                child,
                parent_table,
                watermark,
                c.overlap,
                self.kept.item(f.where),
                self.options.full_sweep_interval,
            )
        label = _label(c.schema_name, c.table)
        parent = _label(c.parent_schema, c.parent_table)
        obs.add(TABLE_ORPHAN_ROWS, n, table=label, column=c.column, parent_table=parent)
        obs.values[f"{label}.{c.column}.orphans"] = n
        if n:
            f.problems.append(
                f"{label}.{c.column}: {count(n, 'orphan row')} without a {parent} parent"
            )

    def _group_counts(
        self, conn: psycopg.Connection[Row], c: GroupCounts, obs: Observation, f: _Findings
    ) -> None:
        # Top-N in the server, so a column with a million distinct values costs a million rows of
        # work there and N+1 rows here.
        query = sql.SQL(
            "WITH g AS (SELECT {by}::text AS grp, count(*) AS n FROM {tbl} GROUP BY 1), "
            "r AS (SELECT grp, n, row_number() OVER (ORDER BY n DESC, grp NULLS LAST) AS rk "
            "      FROM g) "
            "SELECT rk <= %(top)s AS named, CASE WHEN rk <= %(top)s THEN grp END AS grp, "
            "sum(n)::bigint AS n, count(*) AS groups FROM r GROUP BY 1, 2"
        ).format(by=sql.Identifier(c.by), tbl=_table(c.schema_name, c.table))
        rows = fetch_all(conn, query, {"top": c.top}, what=f"group counts of {c.table}")
        label = _label(c.schema_name, c.table)
        total_groups = 0
        for row in rows:
            group = (
                (row["grp"] if row["grp"] is not None else "(null)")
                if row["named"]
                else OTHER_GROUP
            )
            obs.add(TABLE_GROUP_ROWS, int(row["n"]), table=label, column=c.by, group=group)
            total_groups += int(row["groups"])
        obs.add(TABLE_GROUPS, total_groups, table=label, column=c.by)
        obs.values[f"{label}.{c.by}.groups"] = total_groups


def _custom(conn: psycopg.Connection[Row], c: CustomQuery, obs: Observation, f: _Findings) -> None:
    f.notes.append(f"custom {c.name}: {measure_custom(conn, c, obs)} series")


def _plan(context: BuildContext) -> Planned | None:
    pg = context.target.postgres
    if pg is None or not pg.verification.enabled or pg.verification.is_empty():
        return None
    check = VerificationCheck(pg, pg.verification, StateFile(context.state_file("verification")))
    planned = scheduled(check, pg.verification, pg.interval, pg.timeout)
    return replace(planned, metrics=custom_specs(pg.verification))


DEFINITION = CheckDef(
    name=NAME,
    section="postgres",
    source="your tables",
    tells="newest-row age, rows per day, gaps over a threshold, foreign-key orphans, top-N group "
    "counts, custom SQL metrics",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
