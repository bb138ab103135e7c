"""Sessions kept between check runs, within a budget of connections per server.

A check run used to connect and disconnect: a thousand targets on one server cost a thousand
connections (and backend starts) each round, and as many slots of its max_connections at once.
Now a check's session goes back to its server's pool when the run ends cleanly, and the next
run of any check with the same connection string and settings takes it (pinged first: a session
the server ended is replaced, never a check's failure). Each server (host and port) has a budget,
`postgres.max_connections_used` (a process's share of it where workers split the checks): a run
waits for a free slot until its deadline, and an idle session of another database on the same
server is closed to make room. A session that ends a run in any state but idle (an error, a
transaction left open) is closed, not kept.
"""

from __future__ import annotations

import functools
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from core.config.postgres import PostgresConfig, server
from core.config.schema import Config
from core.errors import CheckError

IDLE_SECONDS = 60.0  # a session unused this long is closed (the slowest default interval is 15 s)
# A session idle longer is pinged before a run takes it: a server that ended it meanwhile
# costs a reconnect, not a failed check. One used moments ago (a fleet's checks take turns on
# a few sessions) is taken as it is: the ping would cost as much as the check's own query.
PING_AFTER = 5.0

Row = dict[str, Any]
Key = tuple[str, float, float]  # the connection string and the settings its session was made with


@dataclass
class _Server:
    address: tuple[str, str]
    budget: int
    open: int = 0  # sessions counted against the budget: in use, idle, or being made
    idle: dict[Key, list[tuple[psycopg.Connection[Row], float]]] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def take(self, key: Key, deadline: float) -> tuple[psycopg.Connection[Row] | None, float]:
        """An idle session of `key` and how long it was idle, or None with a slot reserved
        for a new one."""
        while True:
            with self.changed:
                now = time.monotonic()
                stale = self._expired(now)
                kept = self.idle.get(key)
                found, since = kept.pop() if kept else (None, now)
                reserved = found is None and self.open < self.budget
                if reserved:
                    self.open += 1
                elif found is None:
                    other = next((k for k, sessions in self.idle.items() if sessions), None)
                    if other is not None:  # another database's idle session: its slot is ours
                        stale.append(self.idle[other].pop(0)[0])
                        reserved = True
                remaining = deadline - time.monotonic()
                if found is None and not reserved and remaining > 0:
                    self.changed.wait(remaining)
            _close(stale)
            if found is not None or reserved:
                return found, now - since
            if remaining <= 0:
                host, port = self.address
                raise CheckError(
                    "timeout",
                    f"no connection to {host}:{port} free within the {self.budget} drwatch may "
                    "use (postgres.max_connections_used)",
                )

    def _expired(self, now: float) -> list[psycopg.Connection[Row]]:
        gone = []
        for key, sessions in self.idle.items():
            fresh = [(c, since) for c, since in sessions if now - since < IDLE_SECONDS]
            gone += [c for c, since in sessions if now - since >= IDLE_SECONDS]
            self.idle[key] = fresh
        self.open -= len(gone)
        return gone

    def give_back(self, key: Key, conn: psycopg.Connection[Row] | None) -> None:
        """`conn` kept for the next run, or (None: closed or never made) its slot freed."""
        with self.changed:
            if conn is None:
                self.open -= 1
            else:
                self.idle.setdefault(key, []).append((conn, time.monotonic()))
            self.changed.notify()


_servers: dict[tuple[str, str], _Server] = {}
_servers_lock = threading.Lock()
_budgets: dict[tuple[str, str], int] = {}  # by server, the part of it this process may use


def configure(config: Config, processes: int = 1) -> None:
    """Each server's budget: the smallest `max_connections_used` among the targets reaching
    it, split evenly among the `processes` (a daemon's workers) that run checks on it."""
    budgets: dict[tuple[str, str], int] = {}
    for target in config.targets:
        if target.postgres is not None:
            address = server(target.postgres.dsn)
            asked = target.postgres.max_connections_used
            budgets[address] = min(budgets.get(address, asked), asked)
    with _servers_lock:
        _budgets.clear()
        _budgets.update({a: max(1, b // max(1, processes)) for a, b in budgets.items()})
        for address, srv in _servers.items():
            with srv.changed:
                srv.budget = _budgets.get(address, srv.budget)
                srv.changed.notify_all()


@functools.lru_cache(maxsize=4096)
def _address(dsn: str) -> tuple[str, str]:
    return server(dsn)  # parsing a connection string costs more than a check's query


def _server(pg: PostgresConfig) -> _Server:
    address = _address(pg.dsn)
    with _servers_lock:
        budget = _budgets.get(address, pg.max_connections_used)
        return _servers.setdefault(address, _Server(address, budget))


@contextmanager
def reused_session(
    pg: PostgresConfig, statement_timeout: float, connect: Callable[[], psycopg.Connection[Row]]
) -> Iterator[psycopg.Connection[Row]]:
    """A session from the server's pool when one is idle, else from `connect`."""
    srv = _server(pg)
    key = (pg.dsn, statement_timeout, pg.lock_timeout)
    conn, idle_for = srv.take(key, time.monotonic() + pg.timeout)
    if conn is not None and not _alive(conn, idle_for):
        _close([conn])
        conn = None  # its slot is ours: connect anew
    if conn is None:
        try:
            conn = connect()
        except BaseException:
            srv.give_back(key, None)
            raise
    clean = False
    try:
        yield conn
        clean = True
    finally:
        if clean and _idle(conn):
            srv.give_back(key, conn)
        else:
            _close([conn])
            srv.give_back(key, None)


def _alive(conn: psycopg.Connection[Row], idle_for: float) -> bool:
    """Whether a kept session still answers. A server that ended it (a restart, a
    pg_terminate_backend) has said so on its socket, readable at once; one idle for long is
    also pinged (a path that died without a word)."""
    try:
        if conn.closed or _said_something(conn.fileno()):
            return False
        if idle_for <= PING_AFTER:
            return True
        conn.execute("SELECT 1")
        conn.rollback()
    except (psycopg.Error, OSError):
        return False
    return True


def _said_something(fd: int) -> bool:
    """Whether an idle session's socket has something to read (poll: any descriptor number)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _idle(conn: psycopg.Connection[Row]) -> bool:
    """Ends the run's transaction; True if the session is fit for another run."""
    try:
        conn.rollback()
    except psycopg.Error:
        return False
    return not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE


def _close(conns: list[psycopg.Connection[Row]]) -> None:
    for conn in conns:
        with suppress(psycopg.Error):
            conn.close()
