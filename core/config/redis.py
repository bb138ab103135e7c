"""The `redis:` section: the server, its snapshot store and ElastiCache."""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from core.config.base import CheckOptions, Strict, single_userinfo
from core.config.stores import StoreUrl
from core.durations import Duration


class SnapshotOptions(CheckOptions):
    interval: Duration | None = 300.0
    timeout: Duration | None = 600.0  # redis-check-rdb reads the whole snapshot


class ElastiCacheConfig(Strict):
    replication_group: str | None = Field(None, min_length=1)
    cluster: str | None = Field(None, min_length=1)
    region: str | None = None  # default: aws.region, then boto3's chain
    max_age: Duration = 25 * 3600.0  # automatic snapshots are daily at best
    interval: Duration = 300.0
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _one_source(self) -> ElastiCacheConfig:
        if (self.replication_group is None) == (self.cluster is None):
            raise ValueError("set exactly one of replication_group and cluster")
        return self


class RedisHeartbeatConfig(Strict):
    """An opt-in key drwatch sets on the primary every interval to the time it is set (its one
    write there), which the redis drill reads back in the snapshot it loaded: the data a
    restore from that snapshot would lose, measured."""

    key: str = Field("drwatch:heartbeat", min_length=1, max_length=200)
    interval: Duration = Field(15.0, ge=1.0)


class RedisConfig(Strict):
    url: str = Field(repr=False)  # redis://[:password@]host:port/db or rediss:// for TLS
    password: str | None = Field(None, repr=False)  # or password_file
    interval: Duration = 15.0
    timeout: Duration = 5.0  # socket connect/read timeouts and drwatch's deadline
    persistence: CheckOptions = CheckOptions()
    replication: CheckOptions = CheckOptions()
    snapshots: SnapshotOptions = SnapshotOptions()
    snapshot_store: StoreUrl | None = None  # where the RDB snapshots are copied
    snapshot_patterns: list[str] = Field(["*.rdb"], min_length=1)
    retention: Duration = 7 * 86400.0  # the runbook: Redis snapshots kept 7 days
    verify: bool = True  # redis-check-rdb on the newest snapshot
    elasticache: ElastiCacheConfig | None = None
    heartbeat: RedisHeartbeatConfig | None = None

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        single_userinfo(v)
        parsed = urlparse(v)
        if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
            # Never echo the value: it may hold a password.
            raise ValueError("expected redis://host:port/db, rediss://... (TLS) or unix:///path")
        return v
