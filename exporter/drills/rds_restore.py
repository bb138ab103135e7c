"""The runbook's RDS procedures as drills. `rds_pitr` (Scenario 1): RestoreDBInstanceToPointInTime
from the target's instance (newest: its LatestRestorableTime; oldest, random, rotate: within
the retention window); `rds_snapshot`: RestoreDBInstanceFromDBSnapshot of its newest snapshot.
Each into a temporary instance named from the target and the drill, tagged, with production's
class, parameter group, subnet group and security groups unless the drill sets its own, never
public, without deletion protection; then connected with the drill's own `verify_dsn`, checked
as every copy is (exporter.drills.copy_checks), and deleted without a final snapshot."""

from __future__ import annotations

import fnmatch
import time
from typing import Any

import psycopg
from botocore.exceptions import ClientError

from checks.support.aws import aws_client
from core.config.aws_drills import RdsPitrDrill, RdsSnapshotDrill, ScheduledAwsDrill
from core.config.schema import Config, Target
from core.durations import format_duration
from exporter.drills import aurora, aws_lifecycle
from exporter.drills.aws_names import resource_name, tags
from exporter.drills.copy_checks import check_copy
from exporter.drills.rds_points import point_in_window
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DrillError

PITR, SNAPSHOT = "rds_pitr", "rds_snapshot"
MAX_OPTION_PAGES = 50  # orderable options read to find a class (AWS filters by class itself)


def run_pitr(config: Config, target: Target, deadline: float) -> DrillResult:
    return _run(config, target, deadline, PITR)


def run_snapshot(config: Config, target: Target, deadline: float) -> DrillResult:
    return _run(config, target, deadline, SNAPSHOT)


def _run(config: Config, target: Target, deadline: float, scenario: str) -> DrillResult:
    rds, drills = target.rds, target.drills
    assert rds is not None and drills is not None
    drill = drills.rds_pitr if scenario == PITR else drills.rds_snapshot
    assert drill is not None
    where = f"rds instance {rds.instance}"
    client = aws_client("rds", config.aws, rds.region, where)
    resource = aws_lifecycle.Resource(
        where,
        lambda name: client.delete_db_instance(
            DBInstanceIdentifier=name, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        ),
    )

    def body(timer: Timer) -> str:
        source = client.describe_db_instances(DBInstanceIdentifier=rds.instance)["DBInstances"][0]
        request = _request(config, target, client, source, drill, timer)
        drill_id, name = resource_name(target.name, 63)
        # the restored instance's name: TargetDBInstanceIdentifier to a point in time,
        # DBInstanceIdentifier from a snapshot
        named = "TargetDBInstanceIdentifier" if scenario == PITR else "DBInstanceIdentifier"
        request.update({named: name, "Tags": tags(drill_id, target.name)})
        with timer.phase("request"):
            if source.get("DBClusterIdentifier"):  # Aurora: its cluster, then one instance
                if not isinstance(drill, RdsPitrDrill):
                    raise DrillError(
                        f"{rds.instance} is an Aurora cluster's: its snapshots are cluster "
                        "snapshots, which rds_snapshot does not restore; rds_pitr does"
                    )
                made = aurora.restore(config, target, client, source, drill, name, request,
                                      timer)  # fmt: skip
                resource.delete = aurora.deleter(client)
            elif isinstance(drill, RdsPitrDrill):
                made = _restore_to_point(config, target, client, source, drill, request, timer)
            else:
                made = _restore_snapshot(client, rds.instance, drill, request, timer)
            resource.made(name)
        return _verify(config, target, client, drill, name, made, timer)

    return aws_lifecycle.run(config, target, scenario, deadline, resource, body)


def _request(
    config: Config,
    target: Target,
    client: Any,
    source: dict[str, Any],
    drill: ScheduledAwsDrill,
    timer: Timer,
) -> dict[str, Any]:
    """The temporary instance: production's class and networking unless the drill sets its
    own; never public, no deletion protection. A class the region does not offer for the
    engine, or a disabled KMS key, fails here, by name, before anything is made."""
    instance_class = drill.instance_class or source["DBInstanceClass"]
    if not _offered(client, source["Engine"], instance_class):
        raise DrillError(
            f"instance class {instance_class} is not offered for {source['Engine']} here"
        )
    _key_usable(config, target, source.get("KmsKeyId"))
    groups = drill.security_groups or [g["VpcSecurityGroupId"]
                                       for g in source.get("VpcSecurityGroups", [])]  # fmt: skip
    request: dict[str, Any] = {
        "DBInstanceClass": instance_class,
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        "VpcSecurityGroupIds": groups,
    }
    parameter = drill.parameter_group or next(
        (g["DBParameterGroupName"] for g in source.get("DBParameterGroups", [])), None
    )
    subnet = drill.subnet_group or (source.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    if parameter:
        request["DBParameterGroupName"] = parameter
    if subnet:
        request["DBSubnetGroupName"] = subnet
    timer.result.values.update(
        instance_class=instance_class, source_instance=source["DBInstanceIdentifier"]
    )
    return request


def _offered(client: Any, engine: str, instance_class: str) -> bool:
    """Whether the region offers the class for the engine, by its orderable options (read a
    bounded number of pages); an API that lists nothing for the engine tells nothing, and the
    restore is tried."""
    listed = False
    marker: dict[str, str] = {}
    for _ in range(MAX_OPTION_PAGES):
        page = client.describe_orderable_db_instance_options(
            Engine=engine, DBInstanceClass=instance_class, MaxRecords=100, **marker
        )
        options = page.get("OrderableDBInstanceOptions", [])
        listed |= bool(options)
        if any(o.get("DBInstanceClass") == instance_class for o in options):
            return True
        if not page.get("Marker"):
            break
        marker = {"Marker": page["Marker"]}
    return not listed


def _key_usable(config: Config, target: Target, key: str | None) -> None:
    if not key:
        return
    assert target.rds is not None
    kms = aws_client("kms", config.aws, target.rds.region, f"kms key {key}")
    try:
        state = kms.describe_key(KeyId=key)["KeyMetadata"].get("KeyState")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotFoundException":
            raise
        state = "not found"
    if state != "Enabled":
        raise DrillError(f"KMS key {key} is {state}: a restore of the instance cannot decrypt it")


def _restore_to_point(
    config: Config,
    target: Target,
    client: Any,
    source: dict[str, Any],
    drill: RdsPitrDrill,
    request: dict[str, Any],
    timer: Timer,
) -> float:
    """The restore at the point asked; when it is (unix time)."""
    latest, when = point_in_window(config, target, drill, source["LatestRestorableTime"],
                                   source["InstanceCreateTime"], timer)  # fmt: skip
    at = {"UseLatestRestorableTime": True} if when is None else {"RestoreTime": when}
    client.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=source["DBInstanceIdentifier"], **at, **request
    )
    return latest.timestamp() if when is None else when.timestamp()


def _restore_snapshot(
    client: Any, instance: str, drill: RdsSnapshotDrill, request: dict[str, Any], timer: Timer
) -> float:
    """The newest available snapshot of the kind and name asked; when it was taken."""
    snapshots = client.describe_db_snapshots(
        DBInstanceIdentifier=instance, SnapshotType=drill.snapshot_type
    ).get("DBSnapshots", [])
    usable = [s for s in snapshots if s.get("Status") == "available"
              and fnmatch.fnmatch(s["DBSnapshotIdentifier"], drill.snapshot_pattern)]  # fmt: skip
    if not usable:
        raise DrillError(
            f"no available {drill.snapshot_type} snapshot of {instance} matching "
            f"{drill.snapshot_pattern!r} to restore"
        )
    newest = max(usable, key=lambda s: s["SnapshotCreateTime"])
    timer.result.values["backup"] = newest["DBSnapshotIdentifier"]
    client.restore_db_instance_from_db_snapshot(
        DBSnapshotIdentifier=newest["DBSnapshotIdentifier"], **request
    )
    return float(newest["SnapshotCreateTime"].timestamp())


def _verify(
    config: Config,
    target: Target,
    client: Any,
    drill: ScheduledAwsDrill,
    name: str,
    made_at: float,
    timer: Timer,
) -> str:
    """Waits for the instance, connects, checks the copy (rows against production up to the
    point restored); the problems go in `values.problems`."""

    def describe() -> tuple[str, Any]:
        found = client.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        return str(found.get("DBInstanceStatus")), found.get("Endpoint")

    with timer.phase("provision"):
        endpoint = aws_lifecycle.wait_for(describe, timer, config.drills.aws.poll, name)
    dsn = drill.verify_dsn.format(host=endpoint["Address"], port=endpoint["Port"])
    with timer.phase("available"):
        answers(dsn, timer, config.drills.aws.poll)
    timer.result.recovered_to = made_at
    with timer.phase("verify"):
        timer.result.values["problems"] = check_copy(target, dsn, timer, made_at)
    took = format_duration(timer.result.phases.get("provision", 0.0))
    return f"restored {name} (available after {took})"


def answers(dsn: str, timer: Timer, poll: float) -> None:
    """Until the new endpoint takes a connection (DNS and the instance's first start)."""
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=max(1, int(min(10.0, timer.remaining())))).close()
            return
        except psycopg.OperationalError as exc:
            if timer.deadline - time.monotonic() <= poll:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
                raise DrillError(f"the restored instance does not answer: {first}") from None
        time.sleep(poll)  # the endpoint comes up on AWS's time; bounded by the deadline
