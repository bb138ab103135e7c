"""Redis RDB snapshots in a backup store: newest age, retention, integrity (redis-check-rdb)."""

from __future__ import annotations

import time

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.redisconn import run_deadline
from checks.support.stores import Store, listed_backups
from checks.support.verdicts import VerdictCache
from checks.support.verify import VerificationIncomplete, verify_rdb
from core.config.redis import RedisConfig
from core.config.schema import ObjectiveSpec
from core.durations import age_of, format_duration
from core.humanize import count
from core.metrics import gauge

NAME = "redis_snapshots"

REDIS_SNAPSHOTS = gauge("drwatch_redis_snapshots", "RDB snapshots in the snapshot store.")
REDIS_SNAPSHOTS_IN_RETENTION = gauge(
    "drwatch_redis_snapshots_in_retention", "Snapshots made inside the configured retention window."
)
REDIS_SNAPSHOT_RETENTION_SECONDS = gauge(
    "drwatch_redis_snapshot_retention_seconds", "The configured retention window."
)
REDIS_SNAPSHOT_NEWEST_TIMESTAMP_SECONDS = gauge(
    "drwatch_redis_snapshot_newest_timestamp_seconds",
    "When the newest snapshot was written to the store.",
)
REDIS_SNAPSHOT_NEWEST_SIZE_BYTES = gauge(
    "drwatch_redis_snapshot_newest_size_bytes", "Size of the newest snapshot."
)
REDIS_SNAPSHOT_NEWEST_VERIFIED = gauge(
    "drwatch_redis_snapshot_newest_verified",
    "1 if redis-check-rdb accepts the newest snapshot, 0 if not (absent: not verified).",
)

METRICS = (
    REDIS_SNAPSHOTS,
    REDIS_SNAPSHOTS_IN_RETENTION,
    REDIS_SNAPSHOT_RETENTION_SECONDS,
    REDIS_SNAPSHOT_NEWEST_TIMESTAMP_SECONDS,
    REDIS_SNAPSHOT_NEWEST_SIZE_BYTES,
    REDIS_SNAPSHOT_NEWEST_VERIFIED,
)


class RedisSnapshotsCheck(Check[None]):
    def __init__(
        self, config: RedisConfig, store: Store, cache: VerdictCache, objective: ObjectiveSpec
    ) -> None:
        super().__init__(None)
        self.config = config
        self.store = store
        self.cache = cache
        self.rpo = objective.rpo

    def waits_on(self) -> str | None:
        return self.store.url

    def run(self) -> Observation:
        timeout = self.config.snapshots.timeout or self.config.timeout
        deadline = time.monotonic() + timeout * 0.9
        snapshots = listed_backups(self.store, self.config.snapshot_patterns)
        now = time.time()
        obs = Observation(Status.OK, "")
        obs.add(REDIS_SNAPSHOTS, len(snapshots))
        in_retention = sum(1 for o in snapshots if o.modified >= now - self.config.retention)
        obs.add(REDIS_SNAPSHOTS_IN_RETENTION, in_retention)
        obs.add(REDIS_SNAPSHOT_RETENTION_SECONDS, self.config.retention)
        if not snapshots:
            obs.status = Status.CRITICAL
            obs.summary = f"no snapshot in {self.store.url}"
            return obs
        newest = snapshots[-1]
        age = now - newest.modified
        obs.add(REDIS_SNAPSHOT_NEWEST_TIMESTAMP_SECONDS, newest.modified)
        obs.add(REDIS_SNAPSHOT_NEWEST_SIZE_BYTES, newest.size)
        obs.values.update(snapshots=len(snapshots), newest_key=newest.key, newest_age_seconds=age)
        parts = [
            f"{count(len(snapshots), 'snapshot')}, newest {newest.key} "
            f"{age_of(newest.modified)} old"
        ]
        if self.config.verify:
            verdict = self.cache.get(newest)
            if verdict is None:
                try:
                    verdict = verify_rdb(self.store, newest.key, deadline)
                except VerificationIncomplete as exc:
                    parts.append(str(exc))
                else:
                    self.cache.put(newest, verdict)
            self.cache.retain({o.key for o in snapshots})
            if verdict is not None:
                obs.add(REDIS_SNAPSHOT_NEWEST_VERIFIED, verdict.ok)
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


def _plan(context: BuildContext) -> Planned | None:
    redis = context.target.redis
    if redis is None or not redis.snapshot_store or not redis.snapshots.enabled:
        return None
    check = RedisSnapshotsCheck(
        redis,
        context.store(redis.snapshot_store),
        context.verdicts("rdb-verdicts"),
        context.objective("redis"),
    )
    return scheduled(check, redis.snapshots, redis.interval, run_deadline(redis))


DEFINITION = CheckDef(
    name=NAME,
    section="redis",
    source="the snapshot store",
    tells="RDB snapshots: count, inside retention, newest age and size, and the newest checked "
    "with `redis-check-rdb` (streamed to a temporary file that is always removed; verdict cached)",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
