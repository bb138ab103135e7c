"""Redis replication from INFO replication: the runbook's `redis-cli info replication`."""

from __future__ import annotations

from checks.base import MetricSpec, Observation, Status
from checks.support.redisconn import connection, info
from core.config.redis import RedisConfig
from core.durations import format_duration

NAME = "redis_replication"

METRICS = (
    MetricSpec("drwatch_redis_is_master", "gauge", "1 if the server's role is master."),
    MetricSpec("drwatch_redis_connected_replicas", "gauge", "Replicas connected to this master."),
    MetricSpec(
        "drwatch_redis_replica_lag_seconds",
        "gauge",
        "Seconds since the master last heard from a replica (INFO replication lag).",
        ("replica",),
    ),
    MetricSpec(
        "drwatch_redis_replica_offset_lag_bytes",
        "gauge",
        "Replication stream bytes a replica has not acknowledged.",
        ("replica",),
    ),
    MetricSpec(
        "drwatch_redis_master_link_up",
        "gauge",
        "On a replica: 1 if the link to its master is up.",
    ),
    MetricSpec(
        "drwatch_redis_master_last_io_seconds",
        "gauge",
        "On a replica: seconds since the last interaction with its master.",
    ),
    MetricSpec(
        "drwatch_redis_master_link_down_seconds",
        "gauge",
        "On a replica: how long the link to its master has been down; 0 while up.",
    ),
)


class RedisReplicationCheck:
    name: str = NAME
    metrics: tuple[MetricSpec, ...] = METRICS

    def __init__(self, config: RedisConfig) -> None:
        self.config = config

    def collect(self) -> Observation:
        with connection(self.config) as client:
            replication = info(client, "replication")
        role = str(replication.get("role"))
        obs = Observation(Status.OK, "")
        obs.add("drwatch_redis_is_master", role == "master")
        obs.values["role"] = role
        if role == "master":
            connected = int(replication.get("connected_slaves", 0))
            offset = int(replication.get("master_repl_offset", 0))
            obs.add("drwatch_redis_connected_replicas", connected)
            lags = []
            for i in range(connected):
                replica = replication.get(f"slave{i}")
                if not isinstance(replica, dict):
                    continue
                name = f"{replica.get('ip')}:{replica.get('port')}"
                lag = float(replica.get("lag", 0))
                obs.add("drwatch_redis_replica_lag_seconds", lag, replica=name)
                obs.add(
                    "drwatch_redis_replica_offset_lag_bytes",
                    max(0, offset - int(replica.get("offset", 0))),
                    replica=name,
                )
                lags.append(f"{name} {replica.get('state')} lag {lag:g}s")
            obs.values["connected_replicas"] = connected
            obs.summary = f"master with {connected} replica(s)" + (
                ": " + ", ".join(lags) if lags else ""
            )
            return obs
        link_up = replication.get("master_link_status") == "up"
        down_for = float(replication.get("master_link_down_since_seconds", 0) or 0)
        if link_up:
            down_for = 0.0
        obs.add("drwatch_redis_master_link_up", link_up)
        obs.add(
            "drwatch_redis_master_last_io_seconds", replication.get("master_last_io_seconds_ago")
        )
        obs.add("drwatch_redis_master_link_down_seconds", down_for)
        master = f"{replication.get('master_host')}:{replication.get('master_port')}"
        obs.values.update(master=master, master_link_up=link_up, link_down_seconds=down_for)
        if link_up:
            obs.summary = f"replica of {master}, link up"
        else:
            obs.status = Status.CRITICAL
            obs.summary = f"replica of {master}, link down for {format_duration(down_for)}"
        return obs
