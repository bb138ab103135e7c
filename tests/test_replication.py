"""The replication check against a real primary and streaming standby."""

from __future__ import annotations

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
