"""The replication check against a real primary and streaming standby."""

from __future__ import annotations

import os
import signal
import time

from checks.base import Status
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness, make_config, sample


def test_standby_streams_and_the_primary_judges_the_failover(cluster: PgCluster) -> None:
    standby = cluster.create_standby().start()
    try:
        on_standby = CheckHarness(make_config([{"name": "r", "postgres": {"dsn": standby.dsn()}}]))
        wait_until(
            lambda: standby.execute("SELECT pg_is_in_recovery()")[0][0], 30, what="standby up"
        )
        replication = on_standby.run("replication")
        assert replication.values["role"] == "standby"
        assert sample(replication, "drwatch_pg_wal_receiver_streaming") == 1
        assert "primary_failover" not in replication.exposures  # the standby is not judged

        primary = CheckHarness(make_config([{"name": "p", "postgres": {"dsn": cluster.dsn()}}]))
        seen = wait_until(
            lambda: (r := primary.run("replication")).values["standbys"] == 1 and r,
            30,
            what="the standby seen by the primary",
        )
        assert sample(seen, "drwatch_pg_replication_standbys", sync_state="async") == 1
        # Asynchronous: a failover loses what the standby has not flushed (RPO 0: critical).
        assert 0 <= seen.exposures["primary_failover"] < 5
        cluster.set(synchronous_standby_names="*")
        wait_until(
            lambda: cluster.execute("SELECT sync_state FROM pg_stat_replication")[0][0] == "sync",
            30,
            what="synchronous standby",
        )
        synchronous = primary.run("replication")
        assert synchronous.exposures["primary_failover"] == 0
        assert synchronous.status == Status.OK, synchronous.summary
        cluster.set(synchronous_standby_names="")
        standby.stop("immediate")
        wait_until(
            lambda: primary.run("replication").exposures["primary_failover"] == float("inf"),
            30,
            what="no standby left",
        )
        assert primary.run("replication").status == Status.CRITICAL
    finally:
        standby.destroy()


def test_a_single_server_is_said_not_paged_unless_a_failover_objective_is_set(
    cluster: PgCluster,
) -> None:
    """A minimal config (one server, no standby, no failover objective of the user's) is OK,
    saying what to set; the same server with objectives.primary_failover set is CRITICAL."""
    minimal = CheckHarness(make_config([{"name": "p", "postgres": {"dsn": cluster.dsn()}}]))
    single = minimal.run("replication")
    assert single.status == Status.OK, single.summary
    assert "a single server: no failover to judge (set objectives.primary_failover" in (
        single.summary
    )
    assert single.exposures["primary_failover"] == float("inf")  # still what a failover loses
    paged = CheckHarness(make_config([{
        "name": "p", "postgres": {"dsn": cluster.dsn()},
        "objectives": {"primary_failover": {"rpo": "0s"}},
    }])).run("replication")  # fmt: skip
    assert paged.status == Status.CRITICAL
    assert "a failover now loses committed data: no streaming standby" in paged.summary


def test_the_lag_is_dated_by_the_standby_s_last_reply(cluster: PgCluster) -> None:
    """drwatch_check_data_timestamp_seconds: a standby whose WAL receiver stops answering keeps
    its row (until wal_sender_timeout) with its last positions; drwatch still looks every run,
    but what it sees ages, and the data timestamp says so."""
    standby = cluster.create_standby().start()
    primary = CheckHarness(make_config([{"name": "p", "postgres": {"dsn": cluster.dsn()}}]))
    try:
        fresh = wait_until(
            lambda: (r := primary.run("replication")).data_timestamp is not None and r,
            30,
            what="the standby's first reply seen by the primary",
        )
        # A standby replies at least every wal_receiver_status_interval (10 s).
        assert fresh.finished_at - 11 <= (fresh.data_timestamp or 0) <= fresh.finished_at + 1
        (receiver,) = standby.execute("SELECT pid FROM pg_stat_wal_receiver")[0]
        os.kill(receiver, signal.SIGSTOP)
        stopped = time.time()
        try:
            cluster.execute("CREATE TABLE IF NOT EXISTS churn AS SELECT 1 AS x")
            stale = wait_until(
                lambda: (
                    (r := primary.run("replication")).finished_at - (r.data_timestamp or 0) > 3
                    and r
                ),
                30,
                what="the standby's last reply ageing",
            )
            assert (stale.data_timestamp or 0) <= stopped + 0.5
        finally:
            os.kill(receiver, signal.SIGCONT)
    finally:
        standby.destroy()
