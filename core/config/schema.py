"""The config schema: what users may write, validated up front (`extra="forbid"`, units on
every duration). Each section has its module beside this one; loading, interpolation and error
reporting are in `core.config.loading`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from core.config.aws import AwsConfig, RdsConfig
from core.config.base import Strict
from core.config.drills import DRILL_OBJECTIVES, DrillCapacity, DrillsConfig
from core.config.postgres import PostgresConfig, server
from core.config.redis import RedisConfig
from core.config.remediation import RemediationConfig, RemediationOverride, merge_remediation
from core.config.stores import BackupsConfig
from core.durations import Duration

Scenario = Literal["primary_failover", "pitr", "full_restore", "cross_region", "redis"]
SCENARIOS: tuple[Scenario, ...] = (
    "primary_failover",
    "pitr",
    "full_restore",
    "cross_region",
    "redis",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class ObjectiveSpec(Strict):
    rto: Duration | None = None
    rpo: Duration | None = None
    # The share of 30 days the exposure (and the measured RTO) must be within objective: the SLO
    # the recording rules' error budget and burn-rate alerts are computed against.
    slo: float | None = Field(None, gt=0.5, lt=1.0)


# The runbook's "Recovery Time Objectives" table; Redis: hourly snapshots.
DEFAULT_OBJECTIVES: dict[Scenario, ObjectiveSpec] = {
    "primary_failover": ObjectiveSpec.model_construct(rto=300.0, rpo=0.0, slo=0.999),
    "pitr": ObjectiveSpec.model_construct(rto=1800.0, rpo=300.0, slo=0.999),
    "full_restore": ObjectiveSpec.model_construct(rto=7200.0, rpo=3600.0, slo=0.999),
    "cross_region": ObjectiveSpec.model_construct(rto=14400.0, rpo=3600.0, slo=0.999),
    "redis": ObjectiveSpec.model_construct(rto=None, rpo=3600.0, slo=0.999),
}


class Target(Strict):
    name: str
    objectives: dict[Scenario, ObjectiveSpec] = {}
    postgres: PostgresConfig | None = None
    backups: BackupsConfig | None = None
    rds: RdsConfig | None = None
    redis: RedisConfig | None = None
    drills: DrillsConfig | None = None
    remediation: RemediationOverride | None = None  # overrides the global section key by key

    def drill_scenarios(self) -> list[str]:
        """The drills this target runs (one without what it restores does not)."""
        if self.drills is None:
            return []
        backups = self.backups
        return self.drills.scenarios(
            {
                "full_restore": backups is not None and bool(backups.store),
                "pitr": backups is not None and bool(backups.wal_store),
                "cross_region": backups is not None and bool(backups.replica_store),
                "redis": self.redis is not None and bool(self.redis.snapshot_store),
                "rds_pitr": self.rds is not None,
                "rds_snapshot": self.rds is not None,
                "elasticache": self.redis is not None and self.redis.elasticache is not None,
            }
        )

    @model_validator(mode="after")
    def _drills_have_what_they_restore(self) -> Target:
        """A drill without the store it restores from would never run: refused by name."""
        if self.drills is None:
            return self
        backups, redis = self.backups, self.redis
        needs = (
            ("full_restore", self.drills.full_restore, backups and backups.store,
             "backups.store (the dumps it restores)"),
            ("pitr", self.drills.pitr, backups and backups.wal_store,
             "backups.wal_store (the WAL it replays)"),
            ("cross_region", self.drills.cross_region, backups and backups.replica_store,
             "backups.replica_store (the cross-region copies it restores)"),
            ("redis", self.drills.redis, redis and redis.snapshot_store,
             "redis.snapshot_store (the snapshots it loads)"),
            ("rds_pitr", self.drills.rds_pitr, self.rds, "rds.instance (what it restores)"),
            ("rds_snapshot", self.drills.rds_snapshot, self.rds,
             "rds.instance (whose snapshots it restores)"),
            ("elasticache", self.drills.elasticache, redis and redis.elasticache
             and redis.elasticache.replication_group,
             "redis.elasticache.replication_group (whose snapshots it restores)"),
        )  # fmt: skip
        for scenario, drill, source, what in needs:
            if drill is not None and not source:
                raise ValueError(f"drills.{scenario}: needs {what}, which this target lacks")
        pitr = self.drills.pitr
        if (
            pitr is not None
            and pitr.source == "replica"
            and not (backups and backups.wal_replica_store)
        ):
            raise ValueError(
                "drills.pitr.from: replica needs backups.wal_replica_store (the WAL's "
                "cross-region copy), which this target lacks"
            )
        return self

    @field_validator("name")
    @classmethod
    def _label_safe(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r}: use letters, digits and _ . : - (it becomes a label value)")
        return v


class Config(Strict):
    _target_index: dict[str, int] = PrivateAttr(default_factory=dict)
    objectives: dict[Scenario, ObjectiveSpec] = {}
    targets: list[Target] = Field(min_length=1)
    aws: AwsConfig = AwsConfig()
    # Integrity verdicts survive restarts here (each backup is verified once).
    state_dir: str = "/var/lib/drwatch"
    # Where the status page's runbook links go: by default the runbook drwatch serves itself
    # (/runbook, the version running); a wiki's address instead. The alerts' `drwatch_runbook`
    # external label takes drwatch's absolute address (README, Alerts).
    runbook_url: str = "/runbook"
    # Where the verdicts go instead (one file per target): a volume the replicas of a sharded
    # fleet share, so a target's new replica after a reshard reads no backup again.
    verdict_dir: str | None = None
    remediation: RemediationConfig = RemediationConfig()
    drills: DrillCapacity = DrillCapacity()  # shared by every target's drills

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, v: list[Target]) -> list[Target]:
        seen: dict[str, int] = {}
        for index, t in enumerate(v):
            if t.name in seen:
                # Both places, by index: the loader names the file each came from.
                raise ValueError(
                    f"target name {t.name!r} repeats: targets[{seen[t.name]}] and targets[{index}]"
                )
            seen[t.name] = index
        return v

    @field_validator("targets")
    @classmethod
    def _scratch_is_no_monitored_server(cls, v: list[Target]) -> list[Target]:
        # A drill creates and drops a database where it restores: never on a watched server.
        watched = {server(t.postgres.dsn): t.name for t in v if t.postgres is not None}
        for t in v:
            dsn = t.drills.scratch.dsn if t.drills else None
            if dsn and server(dsn) in watched:
                raise ValueError(
                    f"target {t.name!r}: drills.scratch.dsn is the server of target "
                    f"{watched[server(dsn)]!r}; a drill never writes to a monitored server"
                )
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

    def objective(self, target: Target, scenario: Scenario | str) -> ObjectiveSpec:
        """The objective in force: per-target over global over the runbook's defaults; an AWS
        drill's is the scenario's it proves (rds_pitr: pitr)."""
        scenario = DRILL_OBJECTIVES.get(scenario, scenario)
        merged = DEFAULT_OBJECTIVES[scenario].model_dump()  # type: ignore[index]
        for layer in (self.objectives, target.objectives):
            if scenario in layer:
                merged.update(layer[scenario].model_dump(exclude_unset=True))
        return ObjectiveSpec.model_construct(**merged)

    def objective_configured(self, target: Target, scenario: Scenario) -> bool:
        """Whether the user set any of the scenario's objectives (globally or for the target),
        rather than leaving the runbook's default in force."""
        return any(
            scenario in layer and layer[scenario].model_fields_set
            for layer in (self.objectives, target.objectives)
        )

    def remediation_for(self, target: Target) -> RemediationConfig:
        if target.remediation is None:
            return self.remediation
        return merge_remediation(self.remediation, target.remediation)

    def target(self, name: str) -> Target:
        # By name through an index (a fleet's page asks once per target and scenario); the
        # index is checked against the list, which a model_copy may have replaced.
        at = self._target_index.get(name)
        if at is None or at >= len(self.targets) or self.targets[at].name != name:
            self._target_index = {t.name: i for i, t in enumerate(self.targets)}
            at = self._target_index.get(name)
        if at is None:
            raise KeyError(name)
        return self.targets[at]
