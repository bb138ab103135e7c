"""Turns the config into jobs: one per check × target, each with its interval and deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import psycopg

from checks.base import MetricSpec, Observation
from checks.connections import ConnectionsCheck
from checks.pg import Row, session
from checks.replication import ReplicationCheck
from checks.verification import VerificationCheck
from checks.wal_archiving import WalArchivingCheck
from exporter.config import CheckOptions, Config, PostgresConfig, Scenario, Target
from exporter.runner import Job


class PgCheck(Protocol):
    name: str
    metrics: tuple[MetricSpec, ...]

    def collect(self, conn: psycopg.Connection[Row]) -> Observation: ...


# Check instances keep state between runs (the WAL clock); a reload keeps it where it can.
Instances = dict[tuple[str, str], PgCheck]


def _pg_checks(
    config: Config, target: Target, pg: PostgresConfig
) -> list[tuple[PgCheck, CheckOptions, tuple[Scenario, ...]]]:
    checks: list[tuple[PgCheck, CheckOptions, tuple[Scenario, ...]]] = []
    if pg.wal_archiving.enabled:
        pitr = config.objective(target, "pitr")
        checks.append((WalArchivingCheck(pg.wal_archiving, pitr), pg.wal_archiving, ("pitr",)))
    if pg.replication.enabled:
        checks.append((ReplicationCheck(pg.replication), pg.replication, ()))
    if pg.connections.enabled:
        checks.append((ConnectionsCheck(pg.connections), pg.connections, ()))
    if pg.verification.enabled and not pg.verification.is_empty():
        checks.append((VerificationCheck(pg.verification), pg.verification, ()))
    return checks


def _collector(
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


def build_jobs(config: Config, previous: Instances | None = None) -> tuple[list[Job], Instances]:
    jobs: list[Job] = []
    instances: Instances = {}
    for target in config.targets:
        pg = target.postgres
        if pg is None:
            continue
        for check, options, scenarios in _pg_checks(config, target, pg):
            key = (target.name, check.name)
            old = (previous or {}).get(key)
            if isinstance(check, WalArchivingCheck) and isinstance(old, WalArchivingCheck):
                check.adopt_history(old)
            instances[key] = check
            timeout = options.timeout or pg.timeout
            jobs.append(
                Job(
                    target=target.name,
                    check=check.name,
                    interval=options.interval or pg.interval,
                    timeout=timeout,
                    metrics=check.metrics,
                    scenarios=scenarios,
                    collect=_collector(pg, check, options),
                )
            )
    return jobs, instances
