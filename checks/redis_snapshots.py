"""Redis RDB snapshots in a backup store: newest age, retention, integrity (redis-check-rdb)."""

from __future__ import annotations

import time

from checks.base import MetricSpec, Observation, Status
from checks.support.stores import Store, listed_backups
from checks.support.verdicts import VerdictCache
from checks.support.verify import VerificationBusy, verify_rdb
from core.config.redis import RedisConfig
from core.config.schema import ObjectiveSpec
from core.durations import format_duration

NAME = "redis_snapshots"

METRICS = (
    MetricSpec("drwatch_redis_snapshots", "gauge", "RDB snapshots in the snapshot store."),
    MetricSpec(
        "drwatch_redis_snapshots_in_retention",
        "gauge",
        "Snapshots made inside the configured retention window.",
    ),
    MetricSpec(
        "drwatch_redis_snapshot_retention_seconds", "gauge", "The configured retention window."
    ),
    MetricSpec(
        "drwatch_redis_snapshot_newest_timestamp_seconds",
        "gauge",
        "When the newest snapshot was written to the store.",
    ),
    MetricSpec("drwatch_redis_snapshot_newest_size_bytes", "gauge", "Size of the newest snapshot."),
    MetricSpec(
        "drwatch_redis_snapshot_newest_verified",
        "gauge",
        "1 if redis-check-rdb accepts the newest snapshot, 0 if not (absent: not verified).",
    ),
)


class RedisSnapshotsCheck:
    name: str = NAME
    metrics: tuple[MetricSpec, ...] = METRICS

    def __init__(
        self, config: RedisConfig, store: Store, cache: VerdictCache, objective: ObjectiveSpec
    ) -> None:
        self.config = config
        self.store = store
        self.cache = cache
        self.rpo = objective.rpo

    def collect(self) -> Observation:
        timeout = self.config.snapshots.timeout or self.config.timeout
        deadline = time.monotonic() + timeout * 0.9
        snapshots = listed_backups(self.store, self.config.snapshot_patterns)
        now = time.time()
        obs = Observation(Status.OK, "")
        obs.add("drwatch_redis_snapshots", len(snapshots))
        in_retention = sum(1 for o in snapshots if o.modified >= now - self.config.retention)
        obs.add("drwatch_redis_snapshots_in_retention", in_retention)
        obs.add("drwatch_redis_snapshot_retention_seconds", self.config.retention)
        if not snapshots:
            obs.status = Status.CRITICAL
            obs.summary = f"no snapshot in {self.store.url}"
            return obs
        newest = snapshots[-1]
        age = now - newest.modified
        obs.add("drwatch_redis_snapshot_newest_timestamp_seconds", newest.modified)
        obs.add("drwatch_redis_snapshot_newest_size_bytes", newest.size)
        obs.values.update(snapshots=len(snapshots), newest_key=newest.key, newest_age_seconds=age)
        parts = [f"{len(snapshots)} snapshots, newest {newest.key} {format_duration(age)} old"]
        if self.config.verify:
            verdict = self.cache.get(newest)
            if verdict is None:
                try:
                    verdict = verify_rdb(self.store, newest.key, deadline)
                except VerificationBusy as exc:
                    parts.append(str(exc))
                else:
                    if verdict.reason != "verification timed out":
                        self.cache.put(newest, verdict)
            self.cache.retain({o.key for o in snapshots})
            if verdict is not None and verdict.reason != "verification timed out":
                obs.add("drwatch_redis_snapshot_newest_verified", verdict.ok)
                obs.values["newest_verified"] = verdict.ok
                if not verdict.ok:
                    obs.status = Status.CRITICAL
                    parts.append(f"newest snapshot fails verification: {verdict.reason}")
                else:
                    parts.append("verified")
        if self.rpo is not None and age > self.rpo:
            obs.status = Status.CRITICAL
            parts.append(f"older than the redis objective {format_duration(self.rpo)}")
        obs.summary = "; ".join(parts)
        return obs
