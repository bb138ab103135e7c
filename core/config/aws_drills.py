"""The runbook's AWS procedures as drills: `rds_pitr` (RestoreDBInstanceToPointInTime),
`rds_snapshot` (RestoreDBInstanceFromDBSnapshot) and `elasticache` (a replication group from its
newest snapshot), each into a temporary resource drwatch tags, checks and deletes; and what they
may cost (`drills.aws` at the top level: how many at once, instance-hours a month)."""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, field_validator

from core.config.base import Strict
from core.durations import Duration


class ScheduledAwsDrill(Strict):
    """When it runs and how long it may go without a pass (as every drill), and what the
    temporary resource is made of: production's unless set here."""

    schedule: str | None = None
    max_age: Duration | None = None
    # Connects to the restored endpoint: {host} and {port} filled in, its own credentials
    # (`${VAR}`; a secret like any other), never production's DSN.
    verify_dsn: str = Field(min_length=1, repr=False)
    instance_class: str | None = None  # default: production's
    parameter_group: str | None = None
    subnet_group: str | None = None
    security_groups: list[str] | None = None

    @field_validator("verify_dsn")
    @classmethod
    def _template(cls, v: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(v) if name}
        if not fields <= {"host", "port"}:
            raise ValueError(f"only {{host}} and {{port}} are filled in, not {sorted(fields)}")
        return v


class RdsPitrDrill(ScheduledAwsDrill):
    """The runbook's Scenario 1 as written: the instance restored to a point in time (newest:
    its LatestRestorableTime; oldest, random, rotate: within the retention window)."""

    point: Literal["newest", "oldest", "random", "rotate"] = "newest"


class RdsSnapshotDrill(ScheduledAwsDrill):
    """The newest snapshot of the instance (automated, or manual ones whose name matches)."""

    snapshot_type: Literal["automated", "manual"] = "automated"
    snapshot_pattern: str = "*"


class ElastiCacheDrill(Strict):
    """The runbook's Scenario 3: the replication group's newest snapshot into a new group."""

    schedule: str | None = None
    max_age: Duration | None = None
    url: str = Field("redis://{host}:{port}/0", repr=False)  # {host}, {port} filled in
    node_type: str | None = None  # default: production's
    subnet_group: str | None = None
    security_groups: list[str] | None = None

    @field_validator("url")
    @classmethod
    def _template(cls, v: str) -> str:
        if not re.match(r"^rediss?://", v):
            raise ValueError("expected redis://{host}:{port}/0 or rediss://...")
        return v


class NewInstance(Strict):
    """The RDS instance the runbook's Scenario 2 creates to restore the dump into."""

    instance_class: str = Field(min_length=1)
    engine_version: str | None = None
    allocated_storage: int = Field(20, ge=20, le=65536)  # GiB
    region: str | None = None
    parameter_group: str | None = None
    subnet_group: str | None = None
    security_groups: list[str] | None = None


class FullRestoreOnRds(Strict):
    """`drills.full_restore.rds`: the newest dump restored onto a new RDS instance, as the
    runbook's Scenario 2 is written; its RTO includes the instance's creation. The instance's
    master password is made for the drill and never kept; `staging_dsn` reaches it ({host},
    {port}, {user}, {password} filled in)."""

    create: NewInstance
    staging_dsn: str = Field(
        "postgresql://{user}:{password}@{host}:{port}/postgres?sslmode=require",
        min_length=1, repr=False,
    )  # fmt: skip

    @field_validator("staging_dsn")
    @classmethod
    def _template(cls, v: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(v) if name}
        if not fields <= {"host", "port", "user", "password"}:
            raise ValueError(f"only {{host}}, {{port}}, {{user}}, {{password}} are filled in, "
                             f"not {sorted(fields)}")  # fmt: skip
        return v


class AwsDrillCapacity(Strict):
    """What every AWS drill shares: how many temporary resources at once, and the instance-hours
    they may use each calendar month (UTC) before drills are deferred, not failed."""

    max_concurrent: int = Field(1, ge=1, le=8)
    max_instance_hours: float = Field(100.0, gt=0)
    poll: Duration = 15.0  # how often a restore's state is asked while it provisions
