"""Redis replication from INFO replication: the runbook's `redis-cli info replication`."""

from __future__ import annotations

import time

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.redisconn import connection, info, run_deadline
from core.config.redis import RedisConfig
from core.durations import format_duration
from core.humanize import count
from core.metrics import gauge

NAME = "redis_replication"

REDIS_IS_MASTER = gauge("drwatch_redis_is_master", "1 if the server's role is master.")
REDIS_CONNECTED_REPLICAS = gauge(
    "drwatch_redis_connected_replicas", "Replicas connected to this master."
)
REDIS_REPLICA_LAG_SECONDS = gauge(
    "drwatch_redis_replica_lag_seconds",
    "Seconds since the master last heard from a replica (INFO replication lag).",
    "replica",
)
REDIS_REPLICA_OFFSET_LAG_BYTES = gauge(
    "drwatch_redis_replica_offset_lag_bytes",
    "Replication stream bytes a replica has not acknowledged.",
    "replica",
)
REDIS_MASTER_LINK_UP = gauge(
    "drwatch_redis_master_link_up", "On a replica: 1 if the link to its master is up."
)
REDIS_MASTER_LAST_IO_SECONDS = gauge(
    "drwatch_redis_master_last_io_seconds",
    "On a replica: seconds since the last interaction with its master.",
)
REDIS_MASTER_LINK_DOWN_SECONDS = gauge(
    "drwatch_redis_master_link_down_seconds",
    "On a replica: how long the link to its master has been down; 0 while up.",
)

METRICS = (
    REDIS_IS_MASTER,
    REDIS_CONNECTED_REPLICAS,
    REDIS_REPLICA_LAG_SECONDS,
    REDIS_REPLICA_OFFSET_LAG_BYTES,
    REDIS_MASTER_LINK_UP,
    REDIS_MASTER_LAST_IO_SECONDS,
    REDIS_MASTER_LINK_DOWN_SECONDS,
)


class RedisReplicationCheck(Check[None]):
    def __init__(self, config: RedisConfig) -> None:
        super().__init__(None)
        self.config = config

    def run(self) -> Observation:
        with connection(self.config) as client:
            replication = info(client, "replication")
        role = str(replication.get("role"))
        obs = Observation(Status.OK, "")
        obs.add(REDIS_IS_MASTER, role == "master")
        obs.values["role"] = role
        if role == "master":
            connected = int(replication.get("connected_slaves", 0))
            offset = int(replication.get("master_repl_offset", 0))
            obs.add(REDIS_CONNECTED_REPLICAS, connected)
            lags = []
            heard: list[float] = []
            for i in range(connected):
                replica = replication.get(f"slave{i}")
                if not isinstance(replica, dict):
                    continue
                name = f"{replica.get('ip')}:{replica.get('port')}"
                lag = float(replica.get("lag", 0))
                heard.append(lag)
                obs.add(REDIS_REPLICA_LAG_SECONDS, lag, replica=name)
                obs.add(
                    REDIS_REPLICA_OFFSET_LAG_BYTES,
                    max(0, offset - int(replica.get("offset", 0))),
                    replica=name,
                )
                lags.append(f"{name} {replica.get('state')} lag {lag:g}s")
            if heard:  # the offsets are as of each replica's last acknowledgement
                obs.data_timestamp = time.time() - max(heard)
            obs.values["connected_replicas"] = connected
            obs.summary = f"master with {count(connected, 'replica')}" + (
                ": " + ", ".join(lags) if lags else ""
            )
            return obs
        link_up = replication.get("master_link_status") == "up"
        down_for = float(replication.get("master_link_down_since_seconds", 0) or 0)
        if link_up:
            down_for = 0.0
        obs.add(REDIS_MASTER_LINK_UP, link_up)
        obs.add(REDIS_MASTER_LAST_IO_SECONDS, replication.get("master_last_io_seconds_ago"))
        last_io = replication.get("master_last_io_seconds_ago")
        if link_up and last_io is not None:  # what it knows of its master is that old
            obs.data_timestamp = time.time() - float(last_io)
        obs.add(REDIS_MASTER_LINK_DOWN_SECONDS, down_for)
        master = f"{replication.get('master_host')}:{replication.get('master_port')}"
        obs.values.update(master=master, master_link_up=link_up, link_down_seconds=down_for)
        if link_up:
            obs.summary = f"replica of {master}, link up"
        else:
            obs.status = Status.CRITICAL
            obs.summary = f"replica of {master}, link down for {format_duration(down_for)}"
        return obs


def _plan(context: BuildContext) -> Planned | None:
    redis = context.target.redis
    if redis is None or not redis.replication.enabled:
        return None
    check = RedisReplicationCheck(redis)
    return scheduled(check, redis.replication, redis.interval, run_deadline(redis))


DEFINITION = CheckDef(
    name=NAME,
    section="redis",
    source="`INFO replication`",
    tells="role, connected replicas with lag and unacknowledged bytes; on a replica, the master "
    "link, last I/O and how long the link has been down",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
