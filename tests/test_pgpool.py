"""Check sessions kept between runs, within each server's budget (postgres.max_connections_used),
against a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.support import pgpool
from checks.support.pg import check_session
from core.errors import CheckError
from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import CheckHarness, make_config, write_config

DRWATCH_SESSIONS = "SELECT pid FROM pg_stat_activity WHERE application_name = 'drwatch'"


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    """This process's pool starts and ends empty (other tests' sessions are not ours)."""
    yield
    for srv in list(pgpool._servers.values()):
        with srv.changed:
            sessions = [c for kept in srv.idle.values() for c, _ in kept]
            srv.idle.clear()
            srv.open -= len(sessions)
        pgpool._close(sessions)


def _pids(cluster: PgCluster) -> set[int]:
    return {row[0] for row in cluster.execute(DRWATCH_SESSIONS)}


def test_a_check_reuses_its_session_and_replaces_one_the_server_ended(
    shared_cluster: PgCluster, fresh_pool: None
) -> None:
    harness = CheckHarness(make_config([{"name": "db", "postgres": {"dsn": shared_cluster.dsn()}}]))
    assert harness.run("connections").up
    kept = _pids(shared_cluster)
    assert len(kept) == 1
    for check in ("connections", "cluster", "replication", "wal_archiving"):
        assert harness.run(check).up, check
    assert _pids(shared_cluster) == kept  # one backend served every run
    (pid,) = kept
    shared_cluster.execute(f"SELECT pg_terminate_backend({pid})")
    wait_until(lambda: pid not in _pids(shared_cluster), 10, what="the session ended")
    again = harness.run("connections")
    assert again.up, again.summary  # a session the server ended is replaced, not a failure
    assert _pids(shared_cluster) and pid not in _pids(shared_cluster)


def test_a_run_waits_for_a_slot_and_names_the_budget_when_none_frees(
    shared_cluster: PgCluster, fresh_pool: None
) -> None:
    loaded = make_config(
        [
            {
                "name": "db",
                "postgres": {
                    "dsn": shared_cluster.dsn(),
                    "max_connections_used": 1,
                    "timeout": "1s",
                },
            }
        ]
    )
    pgpool.configure(loaded.config)
    pg = loaded.config.targets[0].postgres
    assert pg is not None
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with check_session(pg):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(CheckError) as info, check_session(pg):
            pass
        assert 0.9 < time.monotonic() - started < 5  # its deadline, the check's timeout
        assert info.value.reason == "timeout"
        assert "postgres.max_connections_used" in str(info.value) and "free within the 1" in str(
            info.value
        )
    finally:
        release.set()
        holder.join(10)
    with check_session(pg) as conn:  # the slot freed: the held session is taken again
        assert conn.execute("SELECT 1").fetchone() is not None


def test_a_fleet_on_one_server_stays_within_its_budget(
    shared_cluster: PgCluster, tmp_path: Path
) -> None:
    """Twenty targets on one server, every check each second, two workers, a budget of 4: at
    most 4 drwatch sessions at any time (2 per worker), and the same few serve every run."""
    targets = [
        {
            "name": f"db{i}",
            "postgres": {"dsn": shared_cluster.dsn(), "interval": "1s", "max_connections_used": 4},
        }
        for i in range(20)
    ]
    config = write_config(tmp_path / "fleet.yml", targets, state_dir=str(tmp_path / "state"))
    daemon = DaemonProcess(config, tmp_path, args=("--workers", "2"))
    seen: list[set[int]] = []
    try:
        wait_until(lambda: daemon.get("/-/ready")[0] == 200, 60, what="every check ran")
        deadline = time.monotonic() + 5  # five rounds of every check
        while time.monotonic() < deadline:
            seen.append(_pids(shared_cluster))
            time.sleep(0.05)  # a sampling pace, not a synchronisation
        assert daemon.value("drwatch_check_up", target="db7", check="connections") == 1
    finally:
        daemon.stop()
    assert max(len(pids) for pids in seen) <= 4
    assert len(set().union(*seen)) <= 4  # kept, not made again each run
