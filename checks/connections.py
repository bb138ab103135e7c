"""Connections: client sessions by state and database, utilisation, long idle and long transactions.

Only client backends count (not walsenders, autovacuum or background workers), and never drwatch's
own sessions, so the figures are the application's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from checks.base import Facts, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.pg import APPLICATION_NAME, PostgresCheck, Row, fetch_all, fetch_one
from core.config.postgres import ConnectionsOptions, PostgresConfig
from core.metrics import gauge

NAME = "connections"

# pg_stat_activity.state for client backends, all exported (zeros included) so rules never see
# a series vanish when a state empties.
STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)

PG_CONNECTIONS = gauge(
    "drwatch_pg_connections", "Client sessions by state (drwatch's own excluded).", "state"
)
PG_DATABASE_CONNECTIONS = gauge(
    "drwatch_pg_database_connections",
    "Client sessions per database (drwatch's own excluded).",
    "database",
)
PG_MAX_CONNECTIONS = gauge("drwatch_pg_max_connections", "The server's max_connections.")
PG_SUPERUSER_RESERVED_CONNECTIONS = gauge(
    "drwatch_pg_superuser_reserved_connections",
    "Slots reserved for superusers (superuser_reserved_connections).",
)
PG_CONNECTION_UTILIZATION_RATIO = gauge(
    "drwatch_pg_connection_utilization_ratio",
    "Client sessions (drwatch's included: they take slots) over the slots open to non-superusers.",
)
PG_CONNECTION_SATURATION_THRESHOLD_RATIO = gauge(
    "drwatch_pg_connection_saturation_threshold_ratio",
    "The configured utilisation ratio above which the pool counts as saturating.",
)
PG_IDLE_CONNECTIONS_OVER_THRESHOLD = gauge(
    "drwatch_pg_idle_connections_over_threshold",
    "Sessions idle for longer than the configured idle threshold.",
)
PG_IDLE_THRESHOLD_SECONDS = gauge(
    "drwatch_pg_idle_threshold_seconds", "The configured idle threshold in seconds."
)
PG_OLDEST_IDLE_IN_TRANSACTION_SECONDS = gauge(
    "drwatch_pg_oldest_idle_in_transaction_seconds",
    "How long the longest idle-in-transaction session has been idle; 0 when none.",
)
PG_OLDEST_TRANSACTION_SECONDS = gauge(
    "drwatch_pg_oldest_transaction_seconds",
    "Age of the longest-running open transaction of a client session; 0 when none.",
)

METRICS = (
    PG_CONNECTIONS,
    PG_DATABASE_CONNECTIONS,
    PG_MAX_CONNECTIONS,
    PG_SUPERUSER_RESERVED_CONNECTIONS,
    PG_CONNECTION_UTILIZATION_RATIO,
    PG_CONNECTION_SATURATION_THRESHOLD_RATIO,
    PG_IDLE_CONNECTIONS_OVER_THRESHOLD,
    PG_IDLE_THRESHOLD_SECONDS,
    PG_OLDEST_IDLE_IN_TRANSACTION_SECONDS,
    PG_OLDEST_TRANSACTION_SECONDS,
)

_ACTIVITY_SQL = """
SELECT coalesce(datname, '') AS database, state, count(*) AS sessions,
       count(*) FILTER (WHERE state = 'idle'
                        AND state_change < now() - make_interval(secs => %(idle)s)) AS idle_over,
       max(EXTRACT(EPOCH FROM now() - state_change))
           FILTER (WHERE state LIKE 'idle in transaction%%') AS oldest_iit,
       max(EXTRACT(EPOCH FROM now() - xact_start)) AS oldest_xact
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND application_name IS DISTINCT FROM %(app)s
GROUP BY 1, 2
"""

_LIMITS_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use
"""


@dataclass(frozen=True)
class ConnectionUsage(Facts):
    """What remediation decides from: how full the server is and the oldest idle transaction."""

    utilization_ratio: float
    oldest_idle_in_transaction_seconds: float


class ConnectionsCheck(PostgresCheck[None]):
    def __init__(self, pg: PostgresConfig, options: ConnectionsOptions) -> None:
        super().__init__(pg, options, None)
        self.options = options

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        rows = fetch_all(
            conn,
            _ACTIVITY_SQL,
            {"idle": self.options.idle_threshold, "app": APPLICATION_NAME},
            what="pg_stat_activity",
        )
        limits = fetch_one(conn, _LIMITS_SQL, what="connection limits")
        by_state = dict.fromkeys(STATES, 0)
        by_database: dict[str, int] = {}
        idle_over = 0
        oldest_iit = 0.0
        oldest_xact = 0.0
        for row in rows:
            state = row["state"] or "unknown"
            by_state[state] = by_state.get(state, 0) + row["sessions"]
            by_database[row["database"]] = by_database.get(row["database"], 0) + row["sessions"]
            idle_over += row["idle_over"]
            oldest_iit = max(oldest_iit, float(row["oldest_iit"] or 0))
            oldest_xact = max(oldest_xact, float(row["oldest_xact"] or 0))
        available = max(1, limits["max_connections"] - limits["reserved"])
        utilization = limits["in_use"] / available

        obs = Observation(Status.OK, "")
        for state, count in by_state.items():
            obs.add(PG_CONNECTIONS, count, state=state)
        for database, count in by_database.items():
            obs.add(PG_DATABASE_CONNECTIONS, count, database=database)
        obs.add(PG_MAX_CONNECTIONS, limits["max_connections"])
        obs.add(PG_SUPERUSER_RESERVED_CONNECTIONS, limits["reserved"])
        obs.add(PG_CONNECTION_UTILIZATION_RATIO, utilization)
        obs.add(PG_CONNECTION_SATURATION_THRESHOLD_RATIO, self.options.saturation_ratio)
        obs.add(PG_IDLE_CONNECTIONS_OVER_THRESHOLD, idle_over)
        obs.add(PG_IDLE_THRESHOLD_SECONDS, self.options.idle_threshold)
        obs.add(PG_OLDEST_IDLE_IN_TRANSACTION_SECONDS, oldest_iit)
        obs.add(PG_OLDEST_TRANSACTION_SECONDS, oldest_xact)
        obs.values.update(
            {
                "sessions_" + re.sub(r"\W+", "_", state).strip("_"): n
                for state, n in by_state.items()
            }
        )
        obs.values.update(
            utilization_ratio=round(utilization, 4),
            max_connections=limits["max_connections"],
            idle_over_threshold=idle_over,
            oldest_idle_in_transaction_seconds=oldest_iit,
            oldest_transaction_seconds=oldest_xact,
        )
        obs.facts = ConnectionUsage(utilization, oldest_iit)
        if utilization >= self.options.critical_ratio:
            obs.status = Status.CRITICAL
        elif utilization >= self.options.saturation_ratio:
            obs.status = Status.WARNING
        obs.summary = (
            f"{limits['in_use']}/{available} slots in use ({utilization:.0%}), "
            f"{by_state['active']} active, {by_state['idle']} idle "
            f"({idle_over} idle over threshold), {by_state['idle in transaction']} idle in "
            "transaction"
        )
        return obs


def _plan(context: BuildContext) -> Planned | None:
    pg = context.target.postgres
    if pg is None or not pg.connections.enabled:
        return None
    return scheduled(ConnectionsCheck(pg, pg.connections), pg.connections, pg.interval, pg.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="postgres",
    source="`pg_stat_activity`",
    tells="client sessions by state (all states, zeros included) and database, utilisation of "
    "the slots open to non-superusers, sessions idle past a threshold, oldest idle-in-transaction "
    "and oldest transaction",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
