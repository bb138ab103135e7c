"""Connection states against a real server, with sessions opened by the test."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from checks.base import Status
from checks.connections import STATES
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness, make_config, sample


@pytest.fixture
def server() -> Iterator[PgCluster]:
    c = PgCluster().init(None, max_connections="20").start()
    try:
        yield c
    finally:
        c.destroy()


def _states(result) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {s: sample(result, "drwatch_pg_connections", state=s) for s in STATES}


def _harness(server: PgCluster, **connections: object) -> CheckHarness:
    pg = {"dsn": server.dsn(), "connections": {"idle_threshold": "1s", **connections}}
    return CheckHarness(make_config([{"name": "db", "postgres": pg}]))


def test_state_counts_are_exactly_the_sessions_opened(server: PgCluster) -> None:
    harness = _harness(server)
    before = _states(harness.run("connections"))
    assert set(before) == set(STATES) and all(v is not None for v in before.values())

    with contextlib.ExitStack() as stack:
        old_idle = [stack.enter_context(server.connect()) for _ in range(3)]
        time.sleep(1.5)  # these three are now idle longer than the 1 s threshold
        fresh_idle = [stack.enter_context(server.connect()) for _ in range(2)]
        in_tx = stack.enter_context(server.connect(autocommit=False))
        in_tx.execute("SELECT 1")  # a transaction left open: idle in transaction
        active = [stack.enter_context(server.connect()) for _ in range(2)]
        threads = [
            threading.Thread(target=_sleep_until_cancelled, args=(conn,), daemon=True)
            for conn in active
        ]
        for t in threads:
            t.start()
        wait_until(
            lambda: (
                server.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
                    "AND state = 'active'"
                )[0][0]
                == 2
            ),
            timeout=10,
            what="two active sessions",
        )
        result = harness.run("connections")
        for conn in active:
            conn.cancel()
        for t in threads:
            t.join(10)
        assert len(old_idle) + len(fresh_idle) == 5

    states = _states(result)
    assert states["idle"] == before["idle"] + 5
    assert states["active"] == before["active"] + 2
    assert states["idle in transaction"] == before["idle in transaction"] + 1
    others = [s for s in STATES if s not in ("idle", "active", "idle in transaction")]
    assert all(states[s] == before[s] for s in others)
    assert sample(result, "drwatch_pg_idle_connections_over_threshold") == 3
    assert sample(result, "drwatch_pg_max_connections") == 20
    assert sample(result, "drwatch_pg_database_connections", database="postgres") == 8
    assert sample(result, "drwatch_pg_oldest_idle_in_transaction_seconds") > 0
    assert sample(result, "drwatch_pg_oldest_transaction_seconds") > 0


def _sleep_until_cancelled(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    with contextlib.suppress(psycopg.errors.QueryCanceled):
        conn.execute("SELECT pg_sleep(60)")


def test_utilisation_against_configured_ratios(server: PgCluster) -> None:
    # 20 slots minus 3 reserved for superusers: 17 open to the application.
    harness = _harness(server, saturation_ratio=0.5, critical_ratio=0.9)
    with contextlib.ExitStack() as stack:
        for _ in range(9):
            stack.enter_context(server.connect())
        warning = harness.run("connections")
        for _ in range(7):
            stack.enter_context(server.connect())
        critical = harness.run("connections")
    assert warning.status == Status.WARNING, warning.summary
    # 9 sessions plus drwatch's own: drwatch's session takes a slot too.
    assert sample(warning, "drwatch_pg_connection_utilization_ratio") == pytest.approx(10 / 17)
    assert critical.status == Status.CRITICAL, critical.summary
    assert sample(critical, "drwatch_pg_connection_saturation_threshold_ratio") == 0.5
    # Closed sessions leave pg_stat_activity once their backends have exited.
    wait_until(lambda: harness.run("connections").status == Status.OK, 10, what="back to OK")
