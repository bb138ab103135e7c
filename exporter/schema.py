"""The config schema: what users may write, validated up front (`extra="forbid"`, units on
every duration). Loading, interpolation and error reporting are in `exporter.config`."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlparse

from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from exporter.durations import Duration
from exporter.schema_remediation import RemediationConfig, RemediationOverride, merge_remediation

Scenario = Literal["primary_failover", "pitr", "full_restore", "cross_region", "redis"]
SCENARIOS: tuple[Scenario, ...] = (
    "primary_failover",
    "pitr",
    "full_restore",
    "cross_region",
    "redis",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_METRIC_PART = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset({"target", "check"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectiveSpec(_Strict):
    rto: Duration | None = None
    rpo: Duration | None = None


# The runbook's "Recovery Time Objectives" table; Redis: hourly snapshots.
DEFAULT_OBJECTIVES: dict[Scenario, ObjectiveSpec] = {
    "primary_failover": ObjectiveSpec.model_construct(rto=300.0, rpo=0.0),
    "pitr": ObjectiveSpec.model_construct(rto=1800.0, rpo=300.0),
    "full_restore": ObjectiveSpec.model_construct(rto=7200.0, rpo=3600.0),
    "cross_region": ObjectiveSpec.model_construct(rto=14400.0, rpo=3600.0),
    "redis": ObjectiveSpec.model_construct(rto=None, rpo=3600.0),
}


class CheckOptions(_Strict):
    enabled: bool = True
    interval: Duration | None = None  # default: the section's interval
    timeout: Duration | None = None  # default: the section's timeout


class WalArchivingOptions(CheckOptions):
    # An idle primary keeps a checkpoint or running-xacts record (~100-200 bytes) that no segment
    # switch will ever archive; that much unarchived WAL is not data at risk.
    idle_tolerance_bytes: int = Field(512, ge=0)


class ReplicationOptions(CheckOptions):
    max_lag: Duration = 60.0
    min_standbys: int = Field(0, ge=0)


class ConnectionsOptions(CheckOptions):
    idle_threshold: Duration = 600.0
    saturation_ratio: float = Field(0.8, gt=0, le=1)
    critical_ratio: float = Field(0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ratios_ordered(self) -> ConnectionsOptions:
        if self.critical_ratio < self.saturation_ratio:
            raise ValueError("critical_ratio must not be below saturation_ratio")
        return self


class _TableRef(_Strict):
    table: str = Field(min_length=1)
    schema_name: str | None = Field(None, alias="schema", min_length=1)


class Freshness(_TableRef):
    column: str = Field(min_length=1)
    max_age: Duration


class DailyCounts(_TableRef):
    column: str = Field(min_length=1)
    days: int = Field(10, ge=1, le=366)


class Gaps(_TableRef):
    column: str = Field(min_length=1)
    threshold: Duration
    lookback: Duration = 7 * 86400.0


class Orphans(_TableRef):
    column: str = Field(min_length=1)
    parent_table: str = Field(min_length=1)
    parent_schema: str | None = Field(None, min_length=1)
    parent_column: str = Field(min_length=1)


class GroupCounts(_TableRef):
    by: str = Field(min_length=1)
    top: int = Field(20, ge=1, le=1000)


class CustomQuery(_Strict):
    """A query-exporter-style metric: one row per series, a value column and label columns."""

    name: str
    help: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    value: str = "value"
    labels: list[str] = []
    type: Literal["gauge", "counter"] = "gauge"

    @field_validator("name")
    @classmethod
    def _metric_name(cls, v: str) -> str:
        if not _METRIC_PART.match(v):
            raise ValueError(f"{v!r} is not a valid metric name (letters, digits, underscores)")
        return v

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: list[str]) -> list[str]:
        for label in v:
            if not _METRIC_PART.match(label) or label.startswith("__"):
                raise ValueError(f"{label!r} is not a valid label name")
            if label in _RESERVED_LABELS:
                raise ValueError(f"label {label!r} is reserved by drwatch")
        if len(set(v)) != len(v):
            raise ValueError("label names repeat")
        return v

    @model_validator(mode="after")
    def _value_not_label(self) -> CustomQuery:
        if self.value in self.labels:
            raise ValueError(f"column {self.value!r} cannot be both the value and a label")
        return self


class VerificationOptions(CheckOptions):
    interval: Duration | None = 60.0  # heavier than the others: once a minute unless told
    freshness: list[Freshness] = []
    daily_counts: list[DailyCounts] = []
    gaps: list[Gaps] = []
    orphans: list[Orphans] = []
    group_counts: list[GroupCounts] = []
    custom: list[CustomQuery] = []

    @field_validator("custom")
    @classmethod
    def _unique_custom(cls, v: list[CustomQuery]) -> list[CustomQuery]:
        names = [c.name for c in v]
        if len(set(names)) != len(names):
            raise ValueError("custom metric names repeat")
        return v

    def is_empty(self) -> bool:
        return not any(
            (
                self.freshness,
                self.daily_counts,
                self.gaps,
                self.orphans,
                self.group_counts,
                self.custom,
            )
        )


class PostgresConfig(_Strict):
    dsn: str = Field(repr=False)
    interval: Duration = 15.0
    timeout: Duration = 10.0  # drwatch's own deadline for one check run
    connect_timeout: Duration = 5.0
    statement_timeout: Duration = 5.0
    lock_timeout: Duration = 1.0
    wal_archiving: WalArchivingOptions = WalArchivingOptions()
    replication: ReplicationOptions = ReplicationOptions()
    connections: ConnectionsOptions = ConnectionsOptions()
    verification: VerificationOptions = VerificationOptions()

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, v: str) -> str:
        try:
            conninfo_to_dict(v)
        except Exception:
            # Never echo the value: it holds a password.
            raise ValueError("not a valid PostgreSQL connection string") from None
        return v

    @field_validator("connect_timeout")
    @classmethod
    def _libpq_seconds(cls, v: float) -> float:
        if v < 1:
            raise ValueError("libpq's connect_timeout has a resolution of whole seconds, >= 1s")
        return v


def _store_url(v: str | None) -> str | None:
    if v is None or v == "":
        return v
    parsed = urlparse(v)
    if parsed.scheme == "s3" and parsed.netloc:
        return v
    if parsed.scheme == "file" and parsed.path.startswith("/") and not parsed.netloc:
        return v
    raise ValueError("expected s3://bucket/prefix/ or file:///absolute/path/")


StoreUrl = Annotated[str, BeforeValidator(_store_url)]


class BackupsConfig(_Strict):
    store: StoreUrl  # where the dumps are
    wal_store: StoreUrl | None = None  # where archive_command puts WAL
    replica_store: StoreUrl | None = None  # the cross-region copy of `store`
    patterns: list[str] = Field(["*.dump"], min_length=1)  # which keys are dumps (fnmatch)
    retention: Duration = 30 * 86400.0  # the runbook: PostgreSQL backups kept 30 days
    verify: Literal["full", "toc", "none"] = "full"
    # The newest dump is suspect when smaller than this share of the median of recent ones.
    size_anomaly_ratio: float = Field(0.5, gt=0, lt=1)
    size_anomaly_window: int = Field(7, ge=2, le=100)
    wal_segment_size: int | None = Field(None, ge=1024 * 1024)  # else asked of PostgreSQL
    interval: Duration = 300.0
    timeout: Duration = 1800.0  # a full read of a big dump takes a while
    listing_timeout: Duration = 120.0  # wal_archive and replica_copy only list stores

    @field_validator("wal_segment_size")
    @classmethod
    def _power_of_two(cls, v: int | None) -> int | None:
        if v is not None and v & (v - 1):
            raise ValueError("wal_segment_size must be a power of two (bytes)")
        return v


class RdsConfig(_Strict):
    """An RDS instance: PITR window, retention, Multi-AZ and snapshots from the RDS API."""

    instance: str = Field(min_length=1)
    region: str | None = None  # default: aws.region, then boto3's chain
    retention: Duration = 30 * 86400.0  # BackupRetentionPeriod must be at least this
    interval: Duration = 60.0
    timeout: Duration = 30.0


class SnapshotOptions(CheckOptions):
    interval: Duration | None = 300.0
    timeout: Duration | None = 600.0  # redis-check-rdb reads the whole snapshot


class ElastiCacheConfig(_Strict):
    replication_group: str | None = Field(None, min_length=1)
    cluster: str | None = Field(None, min_length=1)
    region: str | None = None  # default: aws.region, then boto3's chain
    max_age: Duration = 25 * 3600.0  # automatic snapshots are daily at best
    interval: Duration = 300.0
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _one_source(self) -> ElastiCacheConfig:
        if (self.replication_group is None) == (self.cluster is None):
            raise ValueError("set exactly one of replication_group and cluster")
        return self


class RedisConfig(_Strict):
    url: str = Field(repr=False)  # redis://[:password@]host:port/db or rediss:// for TLS
    password: str | None = Field(None, repr=False)  # or password_file
    interval: Duration = 15.0
    timeout: Duration = 5.0  # socket connect/read timeouts and drwatch's deadline
    persistence: CheckOptions = CheckOptions()
    replication: CheckOptions = CheckOptions()
    snapshots: SnapshotOptions = SnapshotOptions()
    snapshot_store: StoreUrl | None = None  # where the RDB snapshots are copied
    snapshot_patterns: list[str] = Field(["*.rdb"], min_length=1)
    retention: Duration = 7 * 86400.0  # the runbook: Redis snapshots kept 7 days
    verify: bool = True  # redis-check-rdb on the newest snapshot
    elasticache: ElastiCacheConfig | None = None

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        parsed = urlparse(v)
        if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
            # Never echo the value: it may hold a password.
            raise ValueError("expected redis://host:port/db, rediss://... (TLS) or unix:///path")
        return v


class AwsConfig(_Strict):
    """S3 (and RDS) access; anything unset comes from boto3's standard chain (AWS_* variables)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = Field(None, repr=False)
    secret_access_key: str | None = Field(None, repr=False)
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 30.0
    max_attempts: int = Field(3, ge=1, le=10)


class Target(_Strict):
    name: str
    objectives: dict[Scenario, ObjectiveSpec] = {}
    postgres: PostgresConfig | None = None
    backups: BackupsConfig | None = None
    rds: RdsConfig | None = None
    redis: RedisConfig | None = None
    remediation: RemediationOverride | None = None  # overrides the global section key by key

    @field_validator("name")
    @classmethod
    def _label_safe(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r}: use letters, digits and _ . : - (it becomes a label value)")
        return v


class Config(_Strict):
    objectives: dict[Scenario, ObjectiveSpec] = {}
    targets: list[Target] = Field(min_length=1)
    aws: AwsConfig = AwsConfig()
    # Integrity verdicts survive restarts here (each backup is verified once).
    state_dir: str = "/var/lib/drwatch"
    remediation: RemediationConfig = RemediationConfig()

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, v: list[Target]) -> list[Target]:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f"target name {t.name!r} repeats")
            seen.add(t.name)
        return v

    @field_validator("targets")
    @classmethod
    def _custom_metrics_agree(cls, v: list[Target]) -> list[Target]:
        # One metric name is one family on /metrics: every target must declare it alike.
        shapes: dict[str, tuple[str, tuple[str, ...], str]] = {}
        for t in v:
            for q in t.postgres.verification.custom if t.postgres else []:
                shape = (q.type, tuple(q.labels), q.help)
                if shapes.setdefault(q.name, shape) != shape:
                    raise ValueError(
                        f"custom metric {q.name!r} is declared with a different type, labels or "
                        "help in another target"
                    )
        return v

    def objective(self, target: Target, scenario: Scenario) -> ObjectiveSpec:
        """The objective in force: per-target over global over the runbook's defaults."""
        merged = DEFAULT_OBJECTIVES[scenario].model_dump()
        for layer in (self.objectives, target.objectives):
            if scenario in layer:
                merged.update(layer[scenario].model_dump(exclude_unset=True))
        return ObjectiveSpec.model_construct(**merged)

    def remediation_for(self, target: Target) -> RemediationConfig:
        if target.remediation is None:
            return self.remediation
        return merge_remediation(self.remediation, target.remediation)

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)
