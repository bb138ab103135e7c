"""The runbook's Scenario 2 as written (`drills.full_restore.rds`): a new RDS instance created,
the newest dump restored into it with pg_restore as every full_restore drill does (a staging
database on it), checked, the instance deleted. The RTO includes the instance's creation, as a
real restore would; its master password is made for the drill and never kept."""

from __future__ import annotations

import secrets
import shutil
from typing import Any

from checks.support.aws import aws_client
from core.config.schema import Config, Target
from core.durations import format_duration
from exporter.drills import aws_lifecycle, full_restore
from exporter.drills.aws_names import resource_name, tags
from exporter.drills.rds_restore import answers
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DrillError, new_scratch_dir

MASTER_USER = "drwatch_drill"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills = target.drills
    assert drills is not None and drills.full_restore is not None
    on = drills.full_restore.rds
    assert on is not None
    where = "a new rds instance for full_restore"
    client = aws_client("rds", config.aws, on.create.region, where)
    resource = aws_lifecycle.Resource(
        where,
        lambda name: client.delete_db_instance(
            DBInstanceIdentifier=name, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        ),
    )

    def body(timer: Timer) -> str:
        drill_id, name = resource_name(target.name, 63)
        password = secrets.token_urlsafe(24)  # the drill's alone, for the drill's life
        with timer.phase("request"):
            client.create_db_instance(**_request(target, name, password),
                                      Tags=tags(drill_id, target.name))  # fmt: skip
            resource.made(name)

        def describe() -> tuple[str, Any]:
            found = client.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
            return str(found.get("DBInstanceStatus")), found.get("Endpoint")

        with timer.phase("provision"):
            endpoint = aws_lifecycle.wait_for(describe, timer, config.drills.aws.poll, name)
        dsn = on.staging_dsn.format(host=endpoint["Address"], port=endpoint["Port"],
                                    user=MASTER_USER, password=password)  # fmt: skip
        with timer.phase("available"):
            answers(dsn, timer, config.drills.aws.poll)
        onto = drills.model_copy(
            update={"scratch": drills.scratch.model_copy(update={"dsn": dsn})}
        )  # the staging path of every full_restore drill, on the new instance
        restored = _restore(config, target.model_copy(update={"drills": onto}), timer)
        if not restored.ok:
            raise DrillError(restored.summary)
        took = format_duration(timer.result.phases.get("provision", 0.0))
        return f"{restored.summary}, onto a new RDS instance {name} (available after {took})"

    return aws_lifecycle.run(config, target, full_restore.SCENARIO, deadline, resource, body)


def _request(target: Target, name: str, password: str) -> dict[str, Any]:
    on = target.drills.full_restore.rds.create  # type: ignore[union-attr]
    request: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "DBInstanceClass": on.instance_class,
        "Engine": "postgres",
        "AllocatedStorage": on.allocated_storage,
        "MasterUsername": MASTER_USER,
        "MasterUserPassword": password,
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        "BackupRetentionPeriod": 0,  # a drill's instance keeps no backups of its own
    }
    optional = {
        "EngineVersion": on.engine_version,
        "DBParameterGroupName": on.parameter_group,
        "DBSubnetGroupName": on.subnet_group,
        "VpcSecurityGroupIds": on.security_groups,
    }
    request.update({k: v for k, v in optional.items() if v})
    return request


def _restore(config: Config, target: Target, timer: Timer) -> DrillResult:
    """The full_restore drill's own work (download, pg_restore, checks) with its clock."""
    drills = target.drills
    assert drills is not None
    workdir = new_scratch_dir(drills.scratch, config.state_dir, "dump-")
    try:
        return full_restore.restore_newest(config, target, drills, timer, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_full_restore(config: Config, target: Target, deadline: float) -> DrillResult:
    """The full_restore drill: onto a new RDS instance where `drills.full_restore.rds` says so,
    else into drwatch's scratch server or staging database."""
    drills = target.drills
    if drills is not None and drills.full_restore is not None and drills.full_restore.rds:
        return run(config, target, deadline)
    return full_restore.run(config, target, deadline)
