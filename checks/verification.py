"""Verification queries: the runbook's data checks, configured per table, identifiers quoted.

Each item runs in its own short read-only transaction, so one broken item (a renamed table, a
timeout) costs that item only; the others are still measured and reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from checks.base import Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.custom_sql import custom_specs, measure_custom
from checks.support.pg import PostgresCheck, Row, end_transaction, fetch_all
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
from core.durations import format_duration
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
)


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


class VerificationCheck(PostgresCheck[None]):
    def __init__(self, pg: PostgresConfig, options: VerificationOptions) -> None:
        super().__init__(pg, options, None)
        self.options = options

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        obs = Observation(Status.OK, "")
        found = _Findings()
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
            try:
                measure(conn, item, obs, found)
            except CheckError as exc:
                if conn.broken or conn.closed:  # the server went away: no item can run
                    raise CheckError("connect", f"verification.{where}: {exc}") from None
                found.errors.append(CheckError(exc.reason, f"verification.{where}: {exc}"))
            end_transaction(conn)  # one short transaction per item; now() fresh for each
        obs.errors = found.errors
        if found.errors:
            obs.status = Status.UNKNOWN
        elif found.problems:
            obs.status = Status.WARNING
        parts = [str(e) for e in found.errors] + found.problems
        obs.summary = "; ".join(parts) if parts else "; ".join(found.notes) or "nothing configured"
        return obs

    def _freshness(
        self, conn: psycopg.Connection[Row], c: Freshness, obs: Observation, f: _Findings
    ) -> None:
        query = sql.SQL(
            "SELECT EXTRACT(EPOCH FROM now() - max({col}))::float8 AS age FROM {tbl}"
        ).format(col=sql.Identifier(c.column), tbl=_table(c.schema_name, c.table))
        age = fetch_all(conn, query, what=f"freshness of {c.table}")[0]["age"]
        label = _label(c.schema_name, c.table)
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
            f.notes.append(f"{label}: newest row {format_duration(age_s)} old")

    def _daily_counts(
        self, conn: psycopg.Connection[Row], c: DailyCounts, obs: Observation, f: _Findings
    ) -> None:
        # A range condition on the column, so an index on it serves the scan.
        query = sql.SQL(
            "SELECT floor(EXTRACT(EPOCH FROM now() - {col}) / 86400)::int AS days_ago, "
            "count(*) AS n FROM {tbl} "
            "WHERE {col} > now() - make_interval(days => %(days)s) AND {col} <= now() GROUP BY 1"
        ).format(col=sql.Identifier(c.column), tbl=_table(c.schema_name, c.table))
        rows = fetch_all(conn, query, {"days": c.days}, what=f"daily counts of {c.table}")
        counts = dict.fromkeys(range(c.days), 0)
        for row in rows:
            if row["days_ago"] in counts:
                counts[row["days_ago"]] += int(row["n"])
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
        # One ordered pass over the lookback window with lag(), instead of the runbook's
        # correlated MIN(id) subquery per row (quadratic without the right index, and it assumes
        # ids are in time order).
        query = sql.SQL(
            "SELECT count(*) FILTER (WHERE gap > %(threshold)s) AS gaps, max(gap) AS largest "
            "FROM (SELECT EXTRACT(EPOCH FROM {col} - lag({col}) OVER (ORDER BY {col}))::float8"
            " AS gap FROM {tbl} WHERE {col} >= now() - make_interval(secs => %(lookback)s)) AS g"
        ).format(col=sql.Identifier(c.column), tbl=_table(c.schema_name, c.table))
        row = fetch_all(
            conn,
            query,
            {"threshold": c.threshold, "lookback": c.lookback},
            what=f"gaps in {c.table}",
        )[0]
        label = _label(c.schema_name, c.table)
        gaps = int(row["gaps"])
        largest = float(row["largest"] or 0.0)
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
        query = sql.SQL(
            "SELECT count(*) AS n FROM {child} AS c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM {parent} AS p WHERE p.{pcol} = c.{col})"
        ).format(
            child=_table(c.schema_name, c.table),
            col=sql.Identifier(c.column),
            parent=_table(c.parent_schema, c.parent_table),
            pcol=sql.Identifier(c.parent_column),
        )
        n = int(fetch_all(conn, query, what=f"orphans in {c.table}")[0]["n"])
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
    check = VerificationCheck(pg, pg.verification)
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
