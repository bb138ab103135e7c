"""Every check drwatch has, in the order they are run, listed and documented. Adding a check is
its module (with its `DEFINITION`), its options in the config schema, and one line here."""

from __future__ import annotations

from checks import (
    backups,
    base_backups,
    cluster,
    connections,
    elasticache,
    rds,
    redis_persistence,
    redis_replication,
    redis_snapshots,
    replica_copy,
    replication,
    replication_slots,
    store_safety,
    verification,
    wal_archive,
    wal_archiving,
)
from checks.definition import CheckDef

REGISTRY: tuple[CheckDef, ...] = (
    wal_archiving.DEFINITION,
    replication.DEFINITION,
    replication_slots.DEFINITION,
    cluster.DEFINITION,
    connections.DEFINITION,
    verification.DEFINITION,
    backups.DEFINITION,
    wal_archive.DEFINITION,
    base_backups.DEFINITION,
    replica_copy.DEFINITION,
    store_safety.DEFINITION,
    rds.DEFINITION,
    redis_persistence.DEFINITION,
    redis_replication.DEFINITION,
    redis_snapshots.DEFINITION,
    elasticache.DEFINITION,
)


def definition(name: str) -> CheckDef:
    for check in REGISTRY:
        if check.name == name:
            return check
    raise KeyError(name)
