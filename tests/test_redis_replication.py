"""The redis_replication check against real master and replica processes."""

from __future__ import annotations

import time
from pathlib import Path

from checks.base import Status
from sandbox.pgcluster import wait_until
from sandbox.redisserver import RedisServer
from tests.helpers import redis_harness, sample


def test_replication_and_a_lost_primary(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.start()
    replica = RedisServer().start("--replicaof", "127.0.0.1", str(redis_server.port))
    try:
        wait_until(
            lambda: replica.client().info("replication")["master_link_status"] == "up",
            20,
            what="link up",
        )
        wait_until(
            lambda: redis_server.client().info("replication")["connected_slaves"] == 1,
            20,
            what="replica seen",
        )
        primary = redis_harness(redis_server.url, tmp_path).run("redis_replication")
        assert primary.values["role"] == "master"
        assert sample(primary, "drwatch_redis_connected_replicas") == 1
        name = f"127.0.0.1:{replica.port}"
        assert sample(primary, "drwatch_redis_replica_lag_seconds", replica=name) is not None
        assert sample(primary, "drwatch_redis_replica_offset_lag_bytes", replica=name) is not None

        on_replica = redis_harness(replica.url, tmp_path)
        up = on_replica.run("redis_replication")
        assert up.values["role"] == "slave" and sample(up, "drwatch_redis_master_link_up") == 1
        # What it knows of its master is as of its last interaction (pinged every 10 s).
        assert up.finished_at - 11 <= (up.data_timestamp or 0) <= up.finished_at
        redis_server.stop()
        wait_until(
            lambda: on_replica.run("redis_replication").values["master_link_up"] is False,
            20,
            what="link down",
        )
        time.sleep(1.5)
        down = on_replica.run("redis_replication")
        assert sample(down, "drwatch_redis_master_link_up") == 0
        assert sample(down, "drwatch_redis_master_link_down_seconds") >= 1
        assert down.status == Status.CRITICAL and "link down for" in down.summary
    finally:
        replica.destroy()
