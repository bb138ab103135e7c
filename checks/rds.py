"""AWS RDS, for teams whose PostgreSQL is RDS: the API says what pg_stat_archiver cannot.

`pitr` exposure is `now - LatestRestorableTime`; `primary_failover` is 0 with Multi-AZ (a
synchronous standby) and +Inf without.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.base import Check, Facts, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.aws import aws_client, aws_error
from core.config.aws import AwsConfig, RdsConfig
from core.config.schema import ObjectiveSpec
from core.durations import format_duration
from core.metrics import gauge

NAME = "rds"

RDS_AVAILABLE = gauge("drwatch_rds_available", "1 if the instance status is `available`.")
RDS_MULTI_AZ = gauge("drwatch_rds_multi_az", "1 if the instance is Multi-AZ.")
RDS_BACKUP_RETENTION_SECONDS = gauge(
    "drwatch_rds_backup_retention_seconds", "The instance's BackupRetentionPeriod, in seconds."
)
RDS_REQUIRED_RETENTION_SECONDS = gauge(
    "drwatch_rds_required_retention_seconds",
    "The retention drwatch's config requires of the instance.",
)
RDS_LATEST_RESTORABLE_TIMESTAMP_SECONDS = gauge(
    "drwatch_rds_latest_restorable_timestamp_seconds",
    "LatestRestorableTime: the newest point-in-time restore target.",
)
RDS_NEWEST_SNAPSHOT_TIMESTAMP_SECONDS = gauge(
    "drwatch_rds_newest_snapshot_timestamp_seconds",
    "When the newest automated snapshot was created.",
)
RDS_AUTOMATED_SNAPSHOTS = gauge(
    "drwatch_rds_automated_snapshots", "Automated snapshots of the instance."
)

METRICS = (
    RDS_AVAILABLE,
    RDS_MULTI_AZ,
    RDS_BACKUP_RETENTION_SECONDS,
    RDS_REQUIRED_RETENTION_SECONDS,
    RDS_LATEST_RESTORABLE_TIMESTAMP_SECONDS,
    RDS_NEWEST_SNAPSHOT_TIMESTAMP_SECONDS,
    RDS_AUTOMATED_SNAPSHOTS,
)


# What RDS says when a failover starts and ends (`describe-events`, category "failover", the
# RDS User Guide's "event categories and event messages"): RDS-EVENT-0013 "A Multi-AZ failover
# that resulted in the promotion of a standby instance has started.", RDS-EVENT-0015 "... is
# complete.", RDS-EVENT-0049 "A Multi-AZ failover has completed."; older instances say
# "Multi-AZ instance failover started." / "... completed."; clusters RDS-EVENT-0072/0073
# "Started same AZ / cross AZ failover to DB instance: x", RDS-EVENT-0071 "Completed failover
# to DB instance: x". Not RDS-EVENT-0034 ("isn't attempting a requested failover").
_FAILOVER_STARTED = re.compile(
    r"failover\b.*\bstarted|started (same az |cross az )?failover", re.IGNORECASE
)
_FAILOVER_COMPLETED = re.compile(
    r"failover\b.*\b(is complete|completed)|completed failover", re.IGNORECASE
)
EVENTS_WINDOW_MINUTES = 14 * 24 * 60  # the longest describe-events looks back


@dataclass(frozen=True)
class RdsFailovers(Facts):
    """The failovers RDS reports in the last 14 days: (started, completed) unix times, oldest
    first; `unreadable`: why the events could not be read (rds:DescribeEvents not granted)."""

    failovers: tuple[tuple[float, float], ...] = ()
    unreadable: str | None = None


def failovers_in(events: list[dict[str, Any]]) -> tuple[tuple[float, float], ...]:
    """Each completed failover paired with the newest start before it."""
    out, started = [], None
    for event in sorted(events, key=lambda e: e["Date"]):
        message, when = str(event.get("Message", "")), event["Date"].timestamp()
        if _FAILOVER_STARTED.search(message):
            started = when
        elif _FAILOVER_COMPLETED.search(message) and started is not None:
            out.append((started, when))
            started = None
    return tuple(out)


class RdsCheck(Check[None]):
    def __init__(
        self, config: RdsConfig, aws: AwsConfig, pitr: ObjectiveSpec, failover: ObjectiveSpec
    ) -> None:
        super().__init__(None)
        self.config = config
        self.pitr_rpo = pitr.rpo
        self.failover_rpo = failover.rpo
        self.aws = aws
        self.where = f"rds instance {config.instance}"
        self._client: Any = None

    def _rds(self) -> Any:
        if self._client is None:
            self._client = aws_client("rds", self.aws, self.config.region, self.where)
        return self._client

    def _describe(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        client = self._rds()
        try:
            instance = client.describe_db_instances(DBInstanceIdentifier=self.config.instance)[
                "DBInstances"
            ][0]
            snapshots: list[dict[str, Any]] = []
            pages = client.get_paginator("describe_db_snapshots").paginate(
                DBInstanceIdentifier=self.config.instance, SnapshotType="automated"
            )
            for page in pages:
                snapshots += page.get("DBSnapshots", [])
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(self.where, exc, "describe") from None
        return instance, snapshots

    def _failovers(self) -> RdsFailovers:
        try:
            events = self._rds().describe_events(
                SourceIdentifier=self.config.instance,
                SourceType="db-instance",
                EventCategories=["failover"],
                Duration=EVENTS_WINDOW_MINUTES,
            )["Events"]
        except (BotoCoreError, ClientError) as exc:  # the rest of the check stands
            return RdsFailovers(unreadable=str(aws_error(self.where, exc, "describe events")))
        return RdsFailovers(failovers_in(events))

    def run(self) -> Observation:
        instance, snapshots = self._describe()
        now = time.time()
        obs = Observation(Status.OK, "")
        status = str(instance.get("DBInstanceStatus", "unknown"))
        multi_az = bool(instance.get("MultiAZ"))
        retention = float(instance.get("BackupRetentionPeriod", 0)) * 86400
        restorable = instance.get("LatestRestorableTime")
        created = [
            s["SnapshotCreateTime"].timestamp() for s in snapshots if s.get("SnapshotCreateTime")
        ]
        obs.add(RDS_AVAILABLE, status == "available")
        obs.add(RDS_MULTI_AZ, multi_az)
        obs.add(RDS_BACKUP_RETENTION_SECONDS, retention)
        obs.add(RDS_REQUIRED_RETENTION_SECONDS, self.config.retention)
        obs.add(
            RDS_LATEST_RESTORABLE_TIMESTAMP_SECONDS,
            restorable.timestamp() if restorable else None,
        )
        obs.add(RDS_NEWEST_SNAPSHOT_TIMESTAMP_SECONDS, max(created) if created else None)
        obs.add(RDS_AUTOMATED_SNAPSHOTS, len(snapshots))
        obs.exposures["primary_failover"] = 0.0 if multi_az else math.inf
        obs.facts = failovers = self._failovers()
        # No restorable time: automated backups are off (retention 0) or not yet taken.
        obs.exposures["pitr"] = now - restorable.timestamp() if restorable else math.inf
        obs.values.update(
            status=status,
            multi_az=multi_az,
            backup_retention_days=retention / 86400,
            latest_restorable_age_seconds=obs.exposures["pitr"],
            automated_snapshots=len(snapshots),
        )
        problems = []
        if status != "available":
            problems.append(f"status {status}")
        if retention < self.config.retention:
            problems.append(
                f"backup retention {format_duration(retention)} is under the required "
                f"{format_duration(self.config.retention)}"
            )
        if not multi_az:
            problems.append("not Multi-AZ: a failover loses what was not replicated")
        pitr = obs.exposures["pitr"]
        if self.pitr_rpo is not None and pitr is not None and pitr > self.pitr_rpo:
            obs.status = Status.CRITICAL
        elif problems:
            obs.status = Status.WARNING
        if not multi_az and self.failover_rpo is not None:
            obs.status = Status.CRITICAL  # +Inf exposure against any failover objective
        pitr_text = (
            "no restorable time" if pitr is None or math.isinf(pitr) else format_duration(pitr)
        )
        if failovers.unreadable:
            problems.append("failover events not readable (grant rds:DescribeEvents)")
        obs.summary = "; ".join([f"{status}, PITR exposure {pitr_text}", *problems])
        return obs


def _plan(context: BuildContext) -> Planned | None:
    rds = context.target.rds
    if rds is None:
        return None
    check = RdsCheck(
        rds,
        context.config.aws,
        context.objective("pitr"),
        context.objective("primary_failover"),
    )
    return Planned(check, rds.interval, rds.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="rds",
    source="the RDS API",
    tells="status, Multi-AZ (the **`primary_failover` exposure** on RDS), "
    "`BackupRetentionPeriod` against the required retention, `LatestRestorableTime` (the "
    "**`pitr` exposure** on RDS), the newest automated snapshot",
    metrics=METRICS,
    scenarios=("pitr", "primary_failover"),
    plan=_plan,
)
