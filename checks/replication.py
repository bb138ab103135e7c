"""Streaming replication: standbys and their lag on a primary, the WAL receiver on a standby."""

from __future__ import annotations

import math
from dataclasses import dataclass

import psycopg

from checks.base import Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.pg import PostgresCheck, Row, fetch_all, fetch_one
from core.config.postgres import PostgresConfig, ReplicationOptions
from core.config.schema import ObjectiveSpec
from core.durations import format_duration
from core.humanize import count
from core.metrics import gauge

NAME = "replication"

PG_REPLICATION_STANDBYS = gauge(
    "drwatch_pg_replication_standbys",
    "Standbys connected to this primary, by pg_stat_replication.sync_state.",
    "sync_state",
)
PG_REPLICATION_LAG_SECONDS = gauge(
    "drwatch_pg_replication_lag_seconds",
    "Replay lag of a standby as seen by the primary (0 when caught up).",
    "standby",
)
PG_REPLICATION_LAG_BYTES = gauge(
    "drwatch_pg_replication_lag_bytes", "WAL the standby has not replayed yet, in bytes.", "standby"
)
PG_WAL_RECEIVER_STREAMING = gauge(
    "drwatch_pg_wal_receiver_streaming",
    "On a standby: 1 if the WAL receiver is streaming from its primary.",
)
PG_LAST_REPLAY_TIMESTAMP_SECONDS = gauge(
    "drwatch_pg_last_replay_timestamp_seconds",
    "On a standby: commit time of the last transaction replayed.",
)
PG_REPLAY_PENDING_BYTES = gauge(
    "drwatch_pg_replay_pending_bytes", "On a standby: WAL received but not yet replayed, in bytes."
)

METRICS = (
    PG_REPLICATION_STANDBYS,
    PG_REPLICATION_LAG_SECONDS,
    PG_REPLICATION_LAG_BYTES,
    PG_WAL_RECEIVER_STREAMING,
    PG_LAST_REPLAY_TIMESTAMP_SECONDS,
    PG_REPLAY_PENDING_BYTES,
)

SYNC_STATES = ("sync", "async", "potential", "quorum")

_PRIMARY_SQL = """
SELECT coalesce(application_name, '') AS standby, sync_state, state,
       coalesce(EXTRACT(EPOCH FROM replay_lag)::float8, 0) AS lag_seconds,
       coalesce(EXTRACT(EPOCH FROM flush_lag)::float8, 0) AS flush_lag_seconds,
       coalesce((pg_current_wal_lsn() - replay_lsn)::bigint, 0) AS lag_bytes,
       EXTRACT(EPOCH FROM reply_time)::float8 AS reply_time
FROM pg_stat_replication
"""

_STANDBY_SQL = """
SELECT (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver_status,
       EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::float8 AS last_replay,
       coalesce((pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn())::bigint, 0) AS pending
"""


def failover_exposure(standbys: list[Row]) -> float:
    """What a failover would lose now: nothing with a streaming synchronous standby (a commit
    waits for its flush), else the least flush lag of a streaming asynchronous one, else all
    (+Inf: there is nothing to fail over to)."""
    streaming = [s for s in standbys if s["state"] == "streaming"]
    if any(s["sync_state"] in ("sync", "quorum") for s in streaming):
        return 0.0
    return min((float(s["flush_lag_seconds"]) for s in streaming), default=math.inf)


@dataclass
class _Seen:
    standby: bool = False  # a standby streamed from this primary since drwatch started


class ReplicationCheck(PostgresCheck[_Seen]):
    def __init__(
        self,
        pg: PostgresConfig,
        options: ReplicationOptions,
        failover: ObjectiveSpec,
        failover_configured: bool = True,
    ) -> None:
        super().__init__(pg, options, _Seen())
        self.options = options
        self.rpo = failover.rpo
        # No standby ever seen and no failover objective the user set: a single server, said
        # (OK), not paged on; a configured objective, or a standby that went away, pages.
        self.failover_configured = failover_configured

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        in_recovery = fetch_one(conn, "SELECT pg_is_in_recovery() AS r", what="role")["r"]
        return self._standby(conn) if in_recovery else self._primary(conn)

    def _primary(self, conn: psycopg.Connection[Row]) -> Observation:
        rows = fetch_all(conn, _PRIMARY_SQL, what="pg_stat_replication")
        obs = Observation(Status.OK, "")
        counts = dict.fromkeys(SYNC_STATES, 0)
        lagging: list[str] = []
        for row in rows:
            counts[row["sync_state"]] = counts.get(row["sync_state"], 0) + 1
            obs.add(PG_REPLICATION_LAG_SECONDS, row["lag_seconds"], standby=row["standby"])
            obs.add(PG_REPLICATION_LAG_BYTES, row["lag_bytes"], standby=row["standby"])
            if row["lag_seconds"] > self.options.max_lag:
                lagging.append(f"{row['standby']} {format_duration(row['lag_seconds'])} behind")
        for state, n in counts.items():
            obs.add(PG_REPLICATION_STANDBYS, n, sync_state=state)
        replies = [row["reply_time"] for row in rows if row["reply_time"] is not None]
        if replies:  # the lags are as of each standby's last reply: the oldest dates them
            obs.data_timestamp = min(replies)
        exposure = failover_exposure(rows)
        obs.exposures["primary_failover"] = exposure
        obs.values.update(
            role="primary",
            standbys=len(rows),
            sync_standbys=counts["sync"],
            primary_failover_exposure_seconds=exposure,
        )
        parts = [f"primary with {count(len(rows), 'standby')}, {counts['sync']} synchronous"]
        self.state.standby |= bool(rows)
        if not rows and not self.failover_configured and not self.state.standby:
            parts.append(
                "a single server: no failover to judge (set objectives.primary_failover to page "
                "on it, or postgres.replication.enabled: false to silence this)"
            )
        elif self.rpo is not None and exposure > self.rpo:
            obs.status = Status.CRITICAL
            parts.append(
                "a failover now loses committed data: no streaming standby"
                if math.isinf(exposure)
                else f"a failover now loses {format_duration(exposure)} of committed data"
            )
        if len(rows) < self.options.min_standbys:
            obs.status = Status.CRITICAL
            parts.append(f"expected at least {self.options.min_standbys}")
        if lagging:
            obs.status = max(obs.status, Status.WARNING)
            parts.append("lagging: " + ", ".join(lagging))
        obs.summary = "; ".join(parts)
        return obs

    def _standby(self, conn: psycopg.Connection[Row]) -> Observation:
        row = fetch_one(conn, _STANDBY_SQL, what="WAL receiver")
        streaming = row["receiver_status"] == "streaming"
        obs = Observation(Status.OK if streaming else Status.CRITICAL, "")
        obs.add(PG_WAL_RECEIVER_STREAMING, streaming)
        obs.add(PG_LAST_REPLAY_TIMESTAMP_SECONDS, row["last_replay"])
        obs.add(PG_REPLAY_PENDING_BYTES, row["pending"])
        obs.values.update(role="standby", receiver_status=row["receiver_status"])
        obs.summary = (
            "standby, WAL receiver streaming"
            if streaming
            else f"standby, WAL receiver {row['receiver_status'] or 'not running'}"
        )
        return obs


def _plan(context: BuildContext) -> Planned | None:
    pg = context.target.postgres
    if pg is None or not pg.replication.enabled:
        return None
    check = ReplicationCheck(
        pg,
        pg.replication,
        context.objective("primary_failover"),
        context.objective_configured("primary_failover"),
    )
    return scheduled(check, pg.replication, pg.interval, pg.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="postgres",
    source="`pg_stat_replication` / `pg_stat_wal_receiver`",
    tells="standbys by sync state and their lag, and the **`primary_failover` exposure**: 0 with "
    "a streaming synchronous standby, else the least flush lag of an asynchronous one, else +Inf; "
    "on a standby, whether it streams (and no failover judgement). A single-node database has no "
    "failover scenario: set `replication: {enabled: false}`",
    metrics=METRICS,
    scenarios=("primary_failover",),
    plan=_plan,
)
