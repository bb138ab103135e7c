"""`drwatch drill --scenario failover`: the runbook's own RDS procedure, run when a person asks
(never scheduled): `reboot-db-instance --force-failover`, then `describe-events` until RDS says
the failover completed. Its duration (RDS's started to completed, else the request to the
instance answering as available again) is recorded as a failover of source `drill`."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.rds import EVENTS_WINDOW_MINUTES, failovers_in
from checks.support.aws import aws_client, aws_error
from core.config.schema import Config, Target
from exporter.drills.failover import FailoverRecord
from exporter.drills.scratch import DrillError

POLL_SECONDS = 5.0


def fail_over(config: Config, target: Target, client: Any = None) -> FailoverRecord:
    """Fails the target's RDS instance over and waits for RDS to say it is done; DrillError
    when RDS refuses or does not finish within `rds.failover_wait`."""
    rds = target.rds
    if rds is None:
        raise DrillError(
            f"target {target.name!r} has no rds: section: the failover drill is RDS only"
        )
    where = f"rds instance {rds.instance}"
    client = client or aws_client("rds", config.aws, rds.region, where)
    requested = time.time()
    try:
        client.reboot_db_instance(DBInstanceIdentifier=rds.instance, ForceFailover=True)
    except (BotoCoreError, ClientError) as exc:
        raise DrillError(str(aws_error(where, exc, "fail over"))) from None
    deadline = time.monotonic() + rds.failover_wait
    poll = min(POLL_SECONDS, rds.failover_wait / 4)
    seen_down = False
    while time.monotonic() < deadline:
        try:
            status = client.describe_db_instances(DBInstanceIdentifier=rds.instance)["DBInstances"][
                0
            ].get("DBInstanceStatus")
            events = client.describe_events(
                SourceIdentifier=rds.instance, SourceType="db-instance",
                EventCategories=["failover"], Duration=EVENTS_WINDOW_MINUTES,
            )["Events"]  # fmt: skip
        except (BotoCoreError, ClientError) as exc:
            raise DrillError(str(aws_error(where, exc, "describe"))) from None
        done = [f for f in failovers_in(events) if f[1] >= requested - 60]
        if done:
            started, completed = done[-1]
            return _record(target, started, completed, "RDS events, failover started to completed")
        seen_down = seen_down or status != "available"
        if seen_down and status == "available":
            return _record(target, requested, time.time(), "request to available (no RDS event)")
        time.sleep(poll)  # polling RDS, whose state changes on its own time
    raise DrillError(
        f"failover of {rds.instance} requested; RDS did not say it completed within "
        f"{rds.failover_wait:g} s (rds.failover_wait): look at `aws rds describe-events`"
    )


def _record(target: Target, started: float, completed: float, how: str) -> FailoverRecord:
    return FailoverRecord(
        target=target.name, source="drill", started_at=started, completed_at=completed,
        detail=f"drill: {how}",
    )  # fmt: skip
