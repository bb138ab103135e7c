"""AWS RDS through moto's standalone server."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import boto3

from checks.base import Status
from tests.helpers import AWS, CheckHarness, make_config, sample


def _instance(endpoint: str, multi_az: bool, retention_days: int) -> str:
    name = f"aragora-{uuid.uuid4().hex[:8]}"
    rds = boto3.client(
        "rds",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
    )
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.r5.large",
        Engine="postgres",
        AllocatedStorage=100,
        MultiAZ=multi_az,
        BackupRetentionPeriod=retention_days,
        MasterUsername="postgres",
        MasterUserPassword="not-a-real-password",
    )
    return name


def _harness(endpoint: str, instance: str, tmp_path: Path, **rds: object) -> CheckHarness:
    return CheckHarness(
        make_config(
            [{"name": "db", "rds": {"instance": instance, **rds}}],
            aws={**AWS, "endpoint_url": endpoint},
            state_dir=str(tmp_path),
        )
    )


def test_multi_az_instance_with_enough_retention(moto_endpoint: str, tmp_path: Path) -> None:
    instance = _instance(moto_endpoint, multi_az=True, retention_days=30)
    result = _harness(moto_endpoint, instance, tmp_path).run("rds")
    assert result.up, result.summary
    assert sample(result, "drwatch_rds_available") == 1
    assert sample(result, "drwatch_rds_multi_az") == 1
    assert sample(result, "drwatch_rds_backup_retention_seconds") == 30 * 86400
    assert sample(result, "drwatch_rds_latest_restorable_timestamp_seconds") is not None
    assert sample(result, "drwatch_rds_automated_snapshots") >= 1
    assert result.exposures["primary_failover"] == 0
    assert 0 <= result.exposures["pitr"] < 300
    assert result.status == Status.OK, result.summary


def test_single_az_short_retention(moto_endpoint: str, tmp_path: Path) -> None:
    instance = _instance(moto_endpoint, multi_az=False, retention_days=7)
    result = _harness(moto_endpoint, instance, tmp_path, retention="30d").run("rds")
    assert sample(result, "drwatch_rds_multi_az") == 0
    assert result.exposures["primary_failover"] == math.inf
    assert result.status == Status.CRITICAL
    assert "backup retention 7d is under the required 30d" in result.summary
    assert "not Multi-AZ" in result.summary


def test_unknown_instance(moto_endpoint: str, tmp_path: Path) -> None:
    result = _harness(moto_endpoint, "nope", tmp_path).run("rds")
    assert not result.up and result.error_reasons == ("config",)
    assert result.summary == "rds instance nope: describe: not found (DBInstanceNotFound)"
