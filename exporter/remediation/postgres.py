"""PostgreSQL side of remediation: the leader lock, which sessions to terminate (guards, filters,
limits, oldest first) and the terminate itself.

Guards no configuration can turn off live in the SQL, both where candidates are listed and in
the statement that terminates (which re-verifies the candidate's state and `state_change`, so a
session that did anything since the decision survives): only client backends, never this
session, never a drwatch session, never a session that is not in the state decided on.
"""

from __future__ import annotations

import math
import threading
from contextlib import suppress
from dataclasses import dataclass, replace

import psycopg

from checks.support.pg import APPLICATION_NAME, Row, connect, fetch_all, fetch_one, query_error
from core.config.postgres import PostgresConfig
from core.config.remediation import (
    Action,
    TerminateIdleInTransactionOptions,
    TerminateIdleOptions,
)
from core.errors import CheckError
from exporter.remediation.decision import Decision, Session

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


def _filtered(s: Session, opts: TerminateIdleOptions | TerminateIdleInTransactionOptions) -> str:
    """Why a candidate is left alone by the configured filters ('' when it is not)."""
    if s.superuser and not opts.allow_superuser:
        return f"user {s.user} is a superuser (allow_superuser is off)"
    if opts.users and s.user not in opts.users:
        return f"user {s.user} is not in users"
    if s.user in opts.exclude_users:
        return f"user {s.user} is in exclude_users"
    if opts.applications and s.application not in opts.applications:
        return f"application {s.application!r} is not in applications"
    if s.application in opts.exclude_applications:
        return f"application {s.application!r} is in exclude_applications"
    return ""


def plan_terminations(
    conn: psycopg.Connection[Row],
    target: str,
    action: Action,
    opts: TerminateIdleOptions | TerminateIdleInTransactionOptions,
) -> list[Decision]:
    """One decision per session matching the action's condition, oldest first."""
    check_privileges(conn)
    states = IDLE if action == "terminate_idle_connections" else IDLE_IN_TRANSACTION
    wanted = opts.max_per_run
    if isinstance(opts, TerminateIdleOptions) and opts.only_as_needed and not opts.always:
        assert opts.when_utilization_above is not None  # the schema requires a trigger
        now = usage(conn)
        # Utilisation must end strictly under the ratio that triggered the action.
        allowed = math.ceil(opts.when_utilization_above * now.available) - 1
        wanted = min(wanted, max(0, now.in_use - allowed))
    decisions = []
    chosen = 0
    for s in candidates(conn, states, opts.idle_for):
        why = _filtered(s, opts)
        if not why and chosen >= wanted:
            why = (
                f"max_per_run ({opts.max_per_run}) reached"
                if chosen >= opts.max_per_run
                else "not needed: utilisation is back under the ratio without it"
            )
        if why:
            decisions.append(Decision(target, action, "skipped", why, s))
            continue
        chosen += 1
        idle = f"{s.state} for {s.idle_seconds:.0f}s (over {opts.idle_for:g}s)"
        decisions.append(Decision(target, action, "planned", idle, s))
    return decisions


def carry_out(
    conn: psycopg.Connection[Row], decisions: list[Decision], dry_run: bool
) -> list[Decision]:
    """Executes the planned decisions; each terminate re-verifies its condition as it acts."""
    done = []
    for d in decisions:
        if d.outcome != "planned" or d.session is None:
            done.append(d)
        elif dry_run:
            done.append(replace(d, outcome="dry_run"))
        else:
            try:
                terminated = terminate(conn, d.session)
            except CheckError as exc:
                done.append(replace(d, outcome="failed", reason=str(exc)))
                continue
            if terminated:
                done.append(replace(d, outcome="executed"))
            else:
                why = "no longer matches the decision (it ran something or ended since)"
                done.append(replace(d, outcome="skipped", reason=why))
    return done


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
        # A pass stuck on a frozen server holds the mutex: leave that connection to the process
        # exit (the server then ends the session, and the lock with it) rather than wait on it.
        if self._mutex.acquire(timeout=1.0):
            try:
                self._close()
            finally:
                self._mutex.release()

    def _close(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
