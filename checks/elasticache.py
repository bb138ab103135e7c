"""ElastiCache snapshots: the runbook restores Redis from one, so the newest must be recent."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.aws import aws_client, aws_error
from core.config.aws import AwsConfig
from core.config.redis import ElastiCacheConfig
from core.durations import age_of, format_duration
from core.humanize import count
from core.metrics import gauge

NAME = "elasticache"

ELASTICACHE_SNAPSHOTS = gauge("drwatch_elasticache_snapshots", "Available snapshots of the cache.")
ELASTICACHE_NEWEST_SNAPSHOT_TIMESTAMP_SECONDS = gauge(
    "drwatch_elasticache_newest_snapshot_timestamp_seconds",
    "When the newest available snapshot was taken (its node snapshots' creation time).",
)
ELASTICACHE_SNAPSHOT_MAX_AGE_SECONDS = gauge(
    "drwatch_elasticache_snapshot_max_age_seconds",
    "The configured maximum age of the newest snapshot.",
)

METRICS = (
    ELASTICACHE_SNAPSHOTS,
    ELASTICACHE_NEWEST_SNAPSHOT_TIMESTAMP_SECONDS,
    ELASTICACHE_SNAPSHOT_MAX_AGE_SECONDS,
)


class ElastiCacheCheck(Check[None]):
    def __init__(self, config: ElastiCacheConfig, aws: AwsConfig) -> None:
        super().__init__(None)
        self.config = config
        self.aws = aws
        source = config.replication_group or config.cluster
        self.where = f"elasticache {source}"
        self._client: Any = None

    def _snapshots(self) -> list[dict[str, Any]]:
        if self._client is None:
            self._client = aws_client("elasticache", self.aws, self.config.region, self.where)
        selector = (
            {"ReplicationGroupId": self.config.replication_group}
            if self.config.replication_group
            else {"CacheClusterId": self.config.cluster}
        )
        snapshots: list[dict[str, Any]] = []
        try:
            for page in self._client.get_paginator("describe_snapshots").paginate(**selector):
                snapshots += page.get("Snapshots", [])
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(self.where, exc, "describe snapshots") from None
        return [s for s in snapshots if s.get("SnapshotStatus") == "available"]

    def run(self) -> Observation:
        snapshots = self._snapshots()
        created = [
            node["SnapshotCreateTime"].timestamp()
            for snap in snapshots
            for node in snap.get("NodeSnapshots", [])
            if node.get("SnapshotCreateTime")
        ]
        obs = Observation(Status.OK, "")
        obs.add(ELASTICACHE_SNAPSHOTS, len(snapshots))
        obs.add(ELASTICACHE_SNAPSHOT_MAX_AGE_SECONDS, self.config.max_age)
        obs.values["snapshots"] = len(snapshots)
        if not snapshots:
            obs.status = Status.CRITICAL
            obs.summary = f"no available snapshot of {self.where}"
            return obs
        if not created:
            obs.status = Status.UNKNOWN
            obs.summary = f"{count(len(snapshots), 'snapshot')}, none with a creation time"
            return obs
        newest = max(created)
        age = time.time() - newest
        obs.add(ELASTICACHE_NEWEST_SNAPSHOT_TIMESTAMP_SECONDS, newest)
        obs.values["newest_age_seconds"] = age
        obs.summary = f"{count(len(snapshots), 'snapshot')}, newest {age_of(newest)} old"
        if age > self.config.max_age:
            obs.status = Status.CRITICAL
            obs.summary += f", over the {format_duration(self.config.max_age)} allowed"
        return obs


def _plan(context: BuildContext) -> Planned | None:
    redis = context.target.redis
    if redis is None or redis.elasticache is None:
        return None
    elasticache = redis.elasticache
    check = ElastiCacheCheck(elasticache, context.config.aws)
    return Planned(check, elasticache.interval, elasticache.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="redis",
    source="the ElastiCache API",
    tells="available snapshots of a replication group or cluster and the newest one's age",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
