"""AWS: how every S3, RDS and ElastiCache call is bounded, and the `rds:` section."""

from __future__ import annotations

from pydantic import Field

from core.config.base import Strict
from core.durations import Duration


class RdsConfig(Strict):
    """An RDS instance: PITR window, retention, Multi-AZ and snapshots from the RDS API."""

    instance: str = Field(min_length=1)
    region: str | None = None  # default: aws.region, then boto3's chain
    retention: Duration = 30 * 86400.0  # BackupRetentionPeriod must be at least this
    interval: Duration = 60.0
    timeout: Duration = 30.0
    # `drwatch drill --scenario failover`: how long to wait for RDS to say the failover completed.
    failover_wait: Duration = 1800.0


class AwsConfig(Strict):
    """S3 (and RDS) access; anything unset comes from boto3's standard chain (AWS_* variables)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = Field(None, repr=False)
    secret_access_key: str | None = Field(None, repr=False)
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 30.0
    max_attempts: int = Field(3, ge=1, le=10)
