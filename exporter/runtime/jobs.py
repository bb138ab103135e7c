"""Turns the config into jobs: one per check x target, each with its interval and deadline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import psycopg

from checks.backups import BackupsCheck
from checks.base import MetricSpec, Observation
from checks.connections import ConnectionsCheck
from checks.elasticache import ElastiCacheCheck
from checks.rds import RdsCheck
from checks.redis_persistence import RedisPersistenceCheck
from checks.redis_replication import RedisReplicationCheck
from checks.redis_snapshots import RedisSnapshotsCheck
from checks.replica_copy import ReplicaCopyCheck
from checks.replication import ReplicationCheck
from checks.support.pg import Row, session
from checks.support.stores import open_store
from checks.support.verdicts import VerdictCache
from checks.verification import VerificationCheck
from checks.wal_archive import WalArchiveCheck
from checks.wal_archiving import WalArchivingCheck
from core.config.base import CheckOptions
from core.config.postgres import PostgresConfig
from core.config.schema import Config, Scenario, Target
from exporter.runtime.runner import Job


class PgCheck(Protocol):
    name: str
    metrics: tuple[MetricSpec, ...]

    def collect(self, conn: psycopg.Connection[Row]) -> Observation: ...


# Check instances keep state between runs (the WAL clock); a reload keeps it where it can.
Instances = dict[tuple[str, str], object]


def _pg_checks(
    config: Config, target: Target, pg: PostgresConfig
) -> list[tuple[PgCheck, CheckOptions, tuple[Scenario, ...]]]:
    checks: list[tuple[PgCheck, CheckOptions, tuple[Scenario, ...]]] = []
    if pg.wal_archiving.enabled:
        pitr = config.objective(target, "pitr")
        checks.append((WalArchivingCheck(pg.wal_archiving, pitr), pg.wal_archiving, ("pitr",)))
    if pg.replication.enabled:
        failover = config.objective(target, "primary_failover")
        checks.append(
            (ReplicationCheck(pg.replication, failover), pg.replication, ("primary_failover",))
        )
    if pg.connections.enabled:
        checks.append((ConnectionsCheck(pg.connections), pg.connections, ()))
    if pg.verification.enabled and not pg.verification.is_empty():
        checks.append((VerificationCheck(pg.verification), pg.verification, ()))
    return checks


def _pg_collector(
    pg: PostgresConfig, check: PgCheck, options: CheckOptions
) -> Callable[[], Observation]:
    # The server cancels a query before drwatch's deadline gives up on it, so no query outlives
    # its check; a check with its own timeout (verification on big tables) gets room to match.
    if options.timeout is not None:
        statement_timeout = options.timeout * 0.9
    else:
        statement_timeout = min(pg.statement_timeout, pg.timeout * 0.9)

    def collect() -> Observation:
        with session(pg, statement_timeout) as conn:
            return check.collect(conn)

    return collect


def _postgres_jobs(
    config: Config, target: Target, pg: PostgresConfig, previous: Instances, instances: Instances
) -> list[Job]:
    jobs = []
    for check, options, scenarios in _pg_checks(config, target, pg):
        key = (target.name, check.name)
        old = previous.get(key)
        if isinstance(check, WalArchivingCheck) and isinstance(old, WalArchivingCheck):
            check.adopt_history(old)
        instances[key] = check
        jobs.append(
            Job(
                target=target.name,
                check=check.name,
                interval=options.interval or pg.interval,
                timeout=options.timeout or pg.timeout,
                metrics=check.metrics,
                scenarios=scenarios,
                collect=_pg_collector(pg, check, options),
            )
        )
    return jobs


def _store_jobs(config: Config, target: Target) -> list[Job]:
    backups = target.backups
    if backups is None:
        return []
    cache = VerdictCache(Path(config.state_dir) / f"verdicts-{target.name}.json")
    check = BackupsCheck(
        backups,
        open_store(backups.store, config.aws),
        cache,
        config.objective(target, "full_restore"),
    )
    jobs = [
        Job(
            target.name,
            check.name,
            backups.interval,
            backups.timeout,
            check.metrics,
            ("full_restore",),
            check.collect,
        )
    ]
    if backups.replica_store:
        copy = ReplicaCopyCheck(
            backups,
            check.store,
            open_store(backups.replica_store, config.aws),
            cache,
            config.objective(target, "cross_region"),
        )
        jobs.append(
            Job(
                target.name,
                copy.name,
                backups.interval,
                backups.listing_timeout,
                copy.metrics,
                ("cross_region",),
                copy.collect,
                after=check.name,
            )
        )
    if backups.wal_store:
        wal = WalArchiveCheck(backups, open_store(backups.wal_store, config.aws), target.postgres)
        # Listing is cheap next to a dump's verification: a tighter deadline, same interval.
        timeout = min(backups.timeout, backups.interval)
        jobs.append(
            Job(target.name, wal.name, backups.interval, timeout, wal.metrics, (), wal.collect)
        )
    return jobs


def _rds_jobs(config: Config, target: Target) -> list[Job]:
    if target.rds is None:
        return []
    check = RdsCheck(
        target.rds,
        config.aws,
        config.objective(target, "pitr"),
        config.objective(target, "primary_failover"),
    )
    return [
        Job(
            target.name,
            check.name,
            target.rds.interval,
            target.rds.timeout,
            check.metrics,
            ("pitr", "primary_failover"),
            check.collect,
        )
    ]


def _redis_jobs(config: Config, target: Target) -> list[Job]:
    redis = target.redis
    if redis is None:
        return []
    objective = config.objective(target, "redis")
    checks: list[tuple[Any, CheckOptions, tuple[Scenario, ...]]] = []
    if redis.persistence.enabled:
        checks.append((RedisPersistenceCheck(redis, objective), redis.persistence, ("redis",)))
    if redis.replication.enabled:
        checks.append((RedisReplicationCheck(redis), redis.replication, ()))
    if redis.snapshot_store and redis.snapshots.enabled:
        cache = VerdictCache(Path(config.state_dir) / f"rdb-verdicts-{target.name}.json")
        store = open_store(redis.snapshot_store, config.aws)
        checks.append((RedisSnapshotsCheck(redis, store, cache, objective), redis.snapshots, ()))
    jobs = [
        Job(
            target.name,
            check.name,
            options.interval or redis.interval,
            # Each Redis command may wait `timeout` on its socket; the socket's own timeout
            # should be the one that reports, with the command it was waiting for.
            options.timeout or redis.timeout * 1.5,
            check.metrics,
            scenarios,
            check.collect,
        )
        for check, options, scenarios in checks
    ]
    if redis.elasticache is not None:
        cache_check = ElastiCacheCheck(redis.elasticache, config.aws)
        jobs.append(
            Job(
                target.name,
                cache_check.name,
                redis.elasticache.interval,
                redis.elasticache.timeout,
                cache_check.metrics,
                (),
                cache_check.collect,
            )
        )
    return jobs


def build_jobs(config: Config, previous: Instances | None = None) -> tuple[list[Job], Instances]:
    jobs: list[Job] = []
    instances: Instances = {}
    for target in config.targets:
        if target.postgres is not None:
            jobs += _postgres_jobs(config, target, target.postgres, previous or {}, instances)
        jobs += _store_jobs(config, target)
        jobs += _rds_jobs(config, target)
        jobs += _redis_jobs(config, target)
    return jobs, instances
