"""PostgreSQL side of remediation: the leader lock, candidate sessions, and the guarded terminate.

Guards no configuration can turn off live in the SQL, both where candidates are listed and in
the statement that terminates (which re-verifies the candidate's state and `state_change`, so a
session that did anything since the decision survives): only client backends, never this
session, never a drwatch session, never a session that is not in the state decided on.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

import psycopg

from checks.pg import APPLICATION_NAME, Row, connect, fetch_all, fetch_one, query_error
from exporter.errors import CheckError
from exporter.schema import PostgresConfig

IDLE = ("idle",)
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")

_GUARDS = """
      a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND a.application_name IS DISTINCT FROM %(drwatch)s
"""

_CANDIDATES_SQL = f"""
SELECT a.pid, coalesce(a.usename, '') AS user, coalesce(a.application_name, '') AS application,
       coalesce(host(a.client_addr), 'local') AS client_addr, a.state, a.state_change,
       EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS idle_seconds,
       coalesce(r.rolsuper, false) AS superuser
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE {_GUARDS}
  AND a.state = ANY(%(states)s)
  AND a.state_change < now() - make_interval(secs => %(idle_for)s)
ORDER BY a.state_change, a.pid
"""

# The decision is re-verified in the statement that acts on it.
_TERMINATE_SQL = f"""
SELECT pg_terminate_backend(a.pid) AS terminated
FROM pg_stat_activity a
WHERE {_GUARDS}
  AND a.pid = %(pid)s
  AND a.state = %(state)s
  AND a.state_change = %(state_change)s
"""

_USAGE_SQL = """
SELECT current_setting('max_connections')::int
           - current_setting('superuser_reserved_connections')::int AS available,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use
"""

_PRIVILEGES_SQL = """
SELECT current_user AS role, r.rolsuper AS superuser,
       pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS can_signal,
       pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') AS can_see
FROM pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    application: str
    client_addr: str
    state: str
    state_change: datetime
    idle_seconds: float
    superuser: bool


@dataclass(frozen=True)
class Usage:
    in_use: int
    available: int


def check_privileges(conn: psycopg.Connection[Row]) -> None:
    """Raises CheckError("permission") naming the GRANT that is missing."""
    row = fetch_one(conn, _PRIVILEGES_SQL, what="remediation privileges")
    if row["superuser"]:
        return
    missing = [
        grant
        for grant, held in (
            ("pg_signal_backend", row["can_signal"]),
            ("pg_monitor", row["can_see"]),
        )
        if not held
    ]
    if missing:
        grants = "; ".join(f"GRANT {g} TO {row['role']}" for g in missing)
        raise CheckError(
            "permission",
            f"role {row['role']} cannot remediate: it needs {' and '.join(missing)} ({grants})",
        )


def usage(conn: psycopg.Connection[Row]) -> Usage:
    row = fetch_one(conn, _USAGE_SQL, what="connection usage")
    return Usage(in_use=int(row["in_use"]), available=max(1, int(row["available"])))


def candidates(
    conn: psycopg.Connection[Row], states: tuple[str, ...], idle_for: float
) -> list[Session]:
    rows = fetch_all(
        conn,
        _CANDIDATES_SQL,
        {"states": list(states), "idle_for": idle_for, "drwatch": APPLICATION_NAME},
        what="pg_stat_activity",
    )
    return [Session(**row) for row in rows]


def terminate(conn: psycopg.Connection[Row], session: Session) -> bool:
    """True if terminated; False if the session no longer matches the decision (it survives)."""
    rows = fetch_all(
        conn,
        _TERMINATE_SQL,
        {
            "pid": session.pid,
            "state": session.state,
            "state_change": session.state_change,
            "drwatch": APPLICATION_NAME,
        },
        what=f"pg_terminate_backend({session.pid})",
    )
    if rows and not rows[0]["terminated"]:
        raise CheckError("query", f"pg_terminate_backend({session.pid}) returned false")
    return bool(rows)


class LeaderLock:
    """`pg_try_advisory_lock` held on a dedicated connection: the leader is whoever holds it.

    The server releases the lock when the holder's session ends, so the lock moves to another
    drwatch when the leader dies or loses its connection.
    """

    def __init__(self, pg: PostgresConfig, key: int) -> None:
        self.pg = pg
        self.key = key
        self._conn: psycopg.Connection[Row] | None = None
        self._mutex = threading.Lock()  # passes of one target's inputs may ask at once

    def hold(self) -> bool:
        """True while this instance holds the lock; tries to take it when it does not."""
        with self._mutex:
            return self._hold()

    def _hold(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                self._close()  # the session is gone, and the lock with it
        conn = connect(self.pg)  # a CheckError names what failed
        # Autocommit: an open transaction would sit "idle in transaction" and be cut off by the
        # session's idle_in_transaction_session_timeout, and the lock with it.
        conn.autocommit = True
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS held", (self.key,)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise query_error(exc, "pg_try_advisory_lock") from None
        if row is None or not row["held"]:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        with self._mutex:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
