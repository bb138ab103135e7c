"""The `postgres:` section: the connection, its bounds, and the options of its checks."""

from __future__ import annotations

import re
from typing import Literal

from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, field_validator, model_validator

from core.config.base import CheckOptions, Strict, single_userinfo
from core.config.sql_safety import side_effects
from core.durations import Duration

_METRIC_PART = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset({"target", "check"})


class WalArchivingOptions(CheckOptions):
    # An idle primary keeps a checkpoint or running-xacts record (~100-200 bytes) that no segment
    # switch will ever archive; that much unarchived WAL is not data at risk.
    idle_tolerance_bytes: int = Field(512, ge=0)


class ReplicationOptions(CheckOptions):
    max_lag: Duration = 60.0
    min_standbys: int = Field(0, ge=0)


class ReplicationSlotsOptions(CheckOptions):
    inactive_retained_bytes: int = Field(1 << 30, ge=0)  # an inactive slot holding more: a problem
    max_slots: int = Field(20, ge=1, le=500)  # slots with a label of their own; the rest summed


class ConnectionsOptions(CheckOptions):
    idle_threshold: Duration = 600.0
    saturation_ratio: float = Field(0.8, gt=0, le=1)
    critical_ratio: float = Field(0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ratios_ordered(self) -> ConnectionsOptions:
        if self.critical_ratio < self.saturation_ratio:
            raise ValueError("critical_ratio must not be below saturation_ratio")
        return self


class _TableRef(Strict):
    table: str = Field(min_length=1)
    schema_name: str | None = Field(None, alias="schema", min_length=1)


class Freshness(_TableRef):
    column: str = Field(min_length=1)
    max_age: Duration


class DailyCounts(_TableRef):
    column: str = Field(min_length=1)
    days: int = Field(10, ge=1, le=366)
    # Windows that can still change, counted every run; older ones are kept between sweeps.
    mutable_days: int = Field(2, ge=1, le=366)


class Gaps(_TableRef):
    column: str = Field(min_length=1)
    threshold: Duration
    lookback: Duration = 7 * 86400.0


class Orphans(_TableRef):
    column: str = Field(min_length=1)
    parent_table: str = Field(min_length=1)
    parent_schema: str | None = Field(None, min_length=1)
    parent_column: str = Field(min_length=1)
    # A monotonic integer column of the child (default: its integer primary key): only rows
    # above its last value, less `overlap` for transactions that commit late, are read again.
    watermark: str | None = Field(None, min_length=1)
    overlap: int = Field(1_000, ge=0)


class GroupCounts(_TableRef):
    by: str = Field(min_length=1)
    top: int = Field(20, ge=1, le=1000)


class CustomQuery(Strict):
    """A query-exporter-style metric: one row per series, a value column and label columns."""

    name: str
    help: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    value: str = "value"
    labels: list[str] = []
    type: Literal["gauge", "counter"] = "gauge"
    # The DBA's own functions the query may call, beside the side-effect-free ones drwatch
    # knows (core.config.sql_safety); allow_side_effects lifts every rule, for SQL one has read.
    functions: list[str] = []
    allow_side_effects: bool = False

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

    @model_validator(mode="after")
    def _no_side_effects(self) -> CustomQuery:
        if self.allow_side_effects:
            return self
        found = side_effects(self.sql, frozenset(self.functions))
        if found:
            raise ValueError(
                f"custom metric {self.name}: the query uses {', '.join(found)}: a custom metric "
                "is one SELECT calling side-effect-free functions (name your own in functions:, "
                "or set allow_side_effects: true for SQL you have read)"
            )
        return self


class VerificationOptions(CheckOptions):
    interval: Duration | None = 60.0  # heavier than the others: once a minute unless told
    # Its own server, typically a streaming standby, so the primary carries no verification.
    dsn: str | None = Field(None, repr=False)
    max_replay_lag: Duration = 300.0  # a standby further behind cannot judge freshness
    full_sweep_interval: Duration = 86400.0  # everything read again, not just what changed
    item_timeout: Duration | None = None  # each item's statement_timeout (default: the section's)
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

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, v: str | None) -> str | None:
        if v:
            single_userinfo(v)
            try:
                conninfo_to_dict(v)
            except Exception:
                raise ValueError("not a valid PostgreSQL connection string") from None
        return v or None

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


_TABLE = r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"


class HeartbeatConfig(Strict):
    """An opt-in tick drwatch writes on the primary (the one write it makes: a one-row upsert
    into a table the DBA creates and grants it), which every drill reads back in the copy it
    restored: the data a recovery would lose, measured."""

    table: str = Field("drwatch_heartbeat", pattern=_TABLE)  # [schema.]table
    interval: Duration = Field(15.0, ge=1.0)


class PostgresConfig(Strict):
    dsn: str = Field(repr=False)
    interval: Duration = 15.0
    timeout: Duration = 10.0  # drwatch's own deadline for one check run
    connect_timeout: Duration = 5.0
    statement_timeout: Duration = 5.0
    lock_timeout: Duration = 1.0
    # Sessions drwatch keeps open to this server at most (its checks reuse them run after run;
    # every target on the same host and port shares the smallest budget among them).
    max_connections_used: int = Field(10, ge=1, le=1000)
    wal_archiving: WalArchivingOptions = WalArchivingOptions()
    replication: ReplicationOptions = ReplicationOptions()
    replication_slots: ReplicationSlotsOptions = ReplicationSlotsOptions()
    cluster: CheckOptions = CheckOptions()
    connections: ConnectionsOptions = ConnectionsOptions()
    verification: VerificationOptions = VerificationOptions()
    heartbeat: HeartbeatConfig | None = None

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, v: str) -> str:
        single_userinfo(v)
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


def server(dsn: str) -> tuple[str, str]:
    """(host, port) a connection string reaches, as written (a socket directory is a host)."""
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    if host in ("127.0.0.1", "::1"):
        host = "localhost"
    return host, str(params.get("port") or "5432")
