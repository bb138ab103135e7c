"""PostgreSQL sessions for checks: read-only, every wait bounded, errors mapped to CheckError."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.rows import dict_row

from checks.base import Check, Observation
from checks.support.pgpool import reused_session
from core.config.base import CheckOptions
from core.config.postgres import PostgresConfig
from core.errors import CheckError
from core.redact import redact

APPLICATION_NAME = "drwatch"

log = logging.getLogger("drwatch.postgres")

S = TypeVar("S")

Row = dict[str, Any]


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def connect(pg: PostgresConfig, statement_timeout: float | None = None) -> psycopg.Connection[Row]:
    """A session that cannot write and cannot wait on the server for long."""
    options = " ".join(
        (
            f"-c statement_timeout={_ms(statement_timeout or pg.statement_timeout)}",
            f"-c lock_timeout={_ms(pg.lock_timeout)}",
            "-c idle_in_transaction_session_timeout=60000",
            "-c default_transaction_read_only=on",
        )
    )
    try:
        conn = psycopg.connect(
            pg.dsn,
            connect_timeout=max(1, int(pg.connect_timeout)),
            application_name=APPLICATION_NAME,
            options=options,
            # A server that vanished (not one that froze: see the runner's deadline) is noticed.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            row_factory=dict_row,
        )
    except psycopg.Error as exc:
        raise CheckError("connect", f"cannot connect: {_message(exc)}") from None
    conn.read_only = True
    _warn_if_superuser(conn)
    return conn


_superusers_warned: set[tuple[str, int, str]] = set()
_warned_lock = threading.Lock()
# Servers drwatch started itself (drill scratch clusters): their superuser is drwatch's own
# business, not a least-privilege problem of a monitored server.
_scratch_hosts: set[str] = set()


def scratch_server(host: str, started: bool) -> None:
    """Registers (or forgets) the socket directory of a server drwatch started for a drill."""
    with _warned_lock:
        (_scratch_hosts.add if started else _scratch_hosts.discard)(host)


def _warn_if_superuser(conn: psycopg.Connection[Row]) -> None:
    """Once per server and role: a superuser's read-only session still runs programs, reads
    files and signals sessions; drwatch needs pg_monitor and SELECT, nothing more."""
    if conn.info.parameter_status("is_superuser") != "on":
        return
    who = (conn.info.host, conn.info.port, conn.info.user)
    with _warned_lock:
        if who in _superusers_warned or who[0] in _scratch_hosts:
            return
        _superusers_warned.add(who)
    log.warning(
        "connected as a superuser: give drwatch a role with pg_monitor and SELECT on its tables "
        "(README, Least privilege)",
        extra={"host": who[0], "port": who[1], "user": who[2]},
    )


@contextmanager
def session(
    pg: PostgresConfig, statement_timeout: float | None = None
) -> Iterator[psycopg.Connection[Row]]:
    conn = connect(pg, statement_timeout)
    try:
        yield conn
    finally:
        with suppress(psycopg.Error):
            conn.close()


@contextmanager
def check_session(
    pg: PostgresConfig, statement_timeout: float | None = None
) -> Iterator[psycopg.Connection[Row]]:
    """A check's session: one kept from an earlier run when idle (checks.support.pgpool)."""
    timeout = statement_timeout or pg.statement_timeout
    with reused_session(pg, timeout, lambda: connect(pg, timeout)) as conn:
        yield conn


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(text)


def query_error(exc: psycopg.Error, what: str) -> CheckError:
    """A CheckError for a failed query, with the category a user can act on."""
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return CheckError("permission", f"{what}: permission denied: {_message(exc)}")
    if isinstance(exc, pgerrors.QueryCanceled | pgerrors.LockNotAvailable):
        return CheckError("timeout", f"{what}: {_message(exc)}")
    if isinstance(exc, psycopg.OperationalError):
        return CheckError("connect", f"{what}: connection lost: {_message(exc)}")
    return CheckError("query", f"{what}: {_message(exc)}")


def fetch_all(
    conn: psycopg.Connection[Row], sql: Any, params: Any = None, what: str = ""
) -> list[Row]:
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    except psycopg.Error as exc:
        _rollback_quietly(conn)
        raise query_error(exc, what or "query") from None


def fetch_one(conn: psycopg.Connection[Row], sql: Any, params: Any = None, what: str = "") -> Row:
    rows = fetch_all(conn, sql, params, what)
    if not rows:
        raise CheckError("query", f"{what or 'query'}: returned no row")
    return rows[0]


def _rollback_quietly(conn: psycopg.Connection[Row]) -> None:
    # A broken connection cannot roll back; the error being raised already says so.
    with suppress(psycopg.Error):
        conn.rollback()


def end_transaction(conn: psycopg.Connection[Row]) -> None:
    """Ends the current read-only transaction; CheckError("connect") if the server is gone."""
    try:
        conn.rollback()
    except psycopg.Error as exc:
        raise query_error(exc, "end of transaction") from None


def timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class PostgresCheck(Check[S]):
    """A check that reads one PostgreSQL server: each run on a fresh read-only session."""

    def __init__(self, pg: PostgresConfig, options: CheckOptions, state: S) -> None:
        super().__init__(state)
        self.pg = pg
        # The server cancels a query before drwatch's deadline gives up on it, so no query
        # outlives its check; a check with its own timeout gets room to match.
        if options.timeout is not None:
            self.statement_timeout = options.timeout * 0.9
        else:
            self.statement_timeout = min(pg.statement_timeout, pg.timeout * 0.9)

    # A session kept for the next run is safe for checks that only read through drwatch's own
    # SQL; a check running the user's (custom SQL) makes a fresh one: a query may leave
    # session state behind (an advisory lock, a prepared statement) that a rollback keeps.
    reuses_session = True

    def run(self) -> Observation:
        sessions = check_session if self.reuses_session else session
        with sessions(self.pg, self.statement_timeout) as conn:
            try:
                return self.collect(conn)
            except psycopg.Error as exc:  # one a check did not map: the server went away
                raise query_error(exc, self.__class__.__name__) from None

    def collect(self, conn: psycopg.Connection[Row]) -> Observation:
        raise NotImplementedError
