"""The `drills:` section: scheduled, isolated restores that prove a backup restores, and time it.

A drill restores into a scratch PostgreSQL: by default a throwaway cluster drwatch starts itself
(initdb into `scratch.dir`, a Unix socket only, removed afterwards); or a staging server given
by `scratch.dsn`, where drwatch creates a database of its own and drops it afterwards.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import AwareDatetime, ByteSize, Field, field_validator, model_validator

from core.config.aws_drills import (
    AwsDrillCapacity,
    ElastiCacheDrill,
    FullRestoreOnRds,
    RdsPitrDrill,
    RdsSnapshotDrill,
    ScheduledAwsDrill,
)
from core.config.base import Strict
from core.config.stores import StoreUrl
from core.durations import Duration

_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A five-field crontab expression (minute hour day month weekday, 0 or 7 = Sunday).

    APScheduler 3 reads weekday numbers from Monday; cron from Sunday. Numbers are turned into
    names first, so `0 3 * * 0` is Sunday 03:00 as in every crontab.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r}: expected five fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    weekday = re.sub(r"\d+", lambda m: _day_name(int(m[0])), weekday)
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=weekday,
        timezone=ZoneInfo(timezone),
    )


def _day_name(number: int) -> str:
    if not 0 <= number <= 7:
        raise ValueError(f"weekday {number} is not 0-7")
    return _DOW[number]


class DrillCapacity(Strict):
    """The top-level `drills:` section: what every target's drills share in one process."""

    # Drills at once, across targets: each restores a whole database on this host.
    max_concurrent: int = Field(1, ge=1, le=16)
    # Scratch disk all running drills may claim together (their dumps times disk_factor).
    disk_budget: ByteSize | None = None
    # How long a scheduled drill waits for capacity before it is deferred (not failed).
    wait: Duration = 3600.0
    # Drill records and the per-minute exposure record kept in state_dir for reports.
    history_keep: Duration = 366 * 86400.0
    history_max_bytes: ByteSize = ByteSize(32 * 1024 * 1024)
    aws: AwsDrillCapacity = AwsDrillCapacity()


class ScratchConfig(Strict):
    """Where a drill restores to."""

    pg_bin: str | None = None  # PostgreSQL server binaries; default: the newest installed
    dir: str | None = None  # default: <state_dir>/drills
    # The OS user the throwaway cluster runs as: PostgreSQL refuses root, so a drwatch running
    # as root needs one (e.g. postgres).
    user: str | None = None
    dsn: str | None = Field(None, repr=False)  # a staging server instead of a throwaway cluster
    # Free space required before a restore, as a multiple of the dump's size.
    disk_factor: float = Field(4.0, ge=1.0, le=100.0)
    # How restores are isolated (exporter.drills.isolation): auto takes bwrap where it works,
    # else user (root, as `user`), else none; bwrap or user insist on it.
    isolation: Literal["auto", "bwrap", "user", "none"] = "auto"

    @field_validator("pg_bin", "dir", "user", "dsn", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v  # `${VAR:-}` left empty: the default


# The runbook's "Backup Testing Schedule": each scenario's test, how often, and by default when
# (a cron) and how long without a pass before it is overdue (the period and a day's grace).
RUNBOOK_TESTS: dict[str, tuple[str, str, str, float]] = {
    "full_restore": ("Restore to staging", "weekly", "0 3 * * 0", 8 * 86400.0),
    "pitr": ("WAL replay test", "monthly", "0 4 1 * *", 32 * 86400.0),
    "cross_region": ("Full DR drill", "quarterly", "0 5 1 1,4,7,10 *", 93 * 86400.0),
    "redis": ("Redis snapshot restore", "weekly", "0 3 * * 0", 8 * 86400.0),
    # The runbook's procedures on AWS, as the team would run them (core.config.aws_drills).
    "rds_pitr": ("WAL replay test", "monthly", "0 4 1 * *", 32 * 86400.0),
    "rds_snapshot": ("Restore to staging", "weekly", "0 3 * * 0", 8 * 86400.0),
    "elasticache": ("Redis snapshot restore", "weekly", "0 3 * * 0", 8 * 86400.0),
}
# The objective each AWS drill is judged against: the runbook's for the scenario it proves.
DRILL_OBJECTIVES = {"rds_pitr": "pitr", "rds_snapshot": "full_restore", "elasticache": "redis"}


class ScheduledDrill(Strict):
    """When this scenario runs and how long it may go without a pass; unset: the drills
    section's `schedule`/`max_age`, else the runbook's frequency for the scenario."""

    schedule: str | None = None
    max_age: Duration | None = None


class FullRestoreDrill(ScheduledDrill):
    jobs: int = Field(2, ge=1, le=64)  # pg_restore --jobs
    rds: FullRestoreOnRds | None = None  # onto a new RDS instance (the runbook's Scenario 2)


class CrossRegionDrill(ScheduledDrill):
    """The full restore's work from `backups.replica_store`: the newest verified backup's copy
    there, downloaded with the replica's own access (`backups.replica_aws`)."""

    jobs: int = Field(2, ge=1, le=64)


class PgBackRestSource(Strict):
    """Restore with pgBackRest itself: its config file (the repository and its credentials) and
    stanza, as on the host that would restore for real."""

    config: str = Field(min_length=1)
    stanza: str = Field(min_length=1)


class PitrDrill(ScheduledDrill):
    """A physical base backup restored and the WAL archive replayed on it (to its end, or to
    `target_time`). `base_store` holds one directory (prefix) per backup, as `pg_basebackup -Ft`
    writes it: base.tar[.gz], pg_wal.tar[.gz] when WAL is included, backup_manifest. Or
    `pgbackrest`: pgBackRest restores its newest set and fetches the WAL."""

    base_store: StoreUrl | None = None  # no physical base backup: the drill says PITR is impossible
    pgbackrest: PgBackRestSource | None = None
    target_time: AwareDatetime | None = (
        None  # with its offset: the copy's time zone is not production's
    )
    # Which point of the recovery window the drill recovers to; rotate: newest, a random
    # point, the oldest, in turn (the whole window proven over three drills).
    point: Literal["newest", "oldest", "random", "rotate"] = "newest"
    # primary: base_store and backups.wal_store; replica: their cross-region copies
    # (drills.pitr.replica_base_store, backups.wal_replica_store).
    source: Literal["primary", "replica"] = Field("primary", alias="from")
    replica_base_store: StoreUrl | None = None
    # The team's own restore_command, run as written (%f, %p) by the copy's server instead of
    # drwatch's reader of wal_store: its options, keys and credentials are what the drill
    # proves. restore_env: variables of drwatch's environment it needs (its credentials, given
    # on purpose); restore_files: files it reads (its config, a key), seen read-only.
    restore_command: str | None = Field(None, min_length=1)
    restore_env: list[str] = []
    restore_files: list[str] = []
    # Who restores the base backup: the tool itself (barman-cloud-restore, barman recover,
    # wal-g backup-fetch, pgBackRest; pg_basebackup's tars as PostgreSQL documents), proving
    # the team's procedure, or drwatch's own reader (pg_basebackup and barman-cloud backups),
    # proving the bytes are there whatever the tool does. auto: the tool where it is installed.
    method: Literal["auto", "tool", "drwatch"] = "auto"
    tool_config: str | None = Field(None, min_length=1)  # barman's -c, WAL-G's --config
    barman_server: str | None = Field(None, min_length=1)  # barman recover's server name

    @model_validator(mode="after")
    def _one_source(self) -> PitrDrill:
        if self.base_store and self.pgbackrest:
            raise ValueError("base_store and pgbackrest are two sources: keep one")
        if self.target_time is not None and self.point != "newest":
            raise ValueError("target_time and point are two targets: keep one")
        if self.pgbackrest and self.point != "newest":
            raise ValueError(
                f"point: {self.point} needs base_store (pg_basebackup backups); pgbackrest "
                "restores its newest set"
            )
        if self.source == "replica" and not (self.base_store and self.replica_base_store):
            raise ValueError("from: replica restores replica_base_store: set it and base_store")
        if self.method == "drwatch" and self.pgbackrest:
            raise ValueError(
                "method: drwatch and pgbackrest: pgBackRest's sets are restored by pgBackRest "
                "(drwatch reads its catalogue, not its files)"
            )
        if self.restore_command and self.pgbackrest:
            raise ValueError("restore_command and pgbackrest: pgBackRest fetches its own WAL")
        if self.restore_command and "%f" not in self.restore_command:
            raise ValueError("restore_command: no %f (the WAL file asked for) in it")
        return self


class RedisDrill(ScheduledDrill):
    """The newest RDB snapshot loaded into a scratch redis-server on loopback."""


class DrillsConfig(Strict):
    # Every scenario's schedule and max_age unless it sets its own; unset: the runbook's.
    schedule: str | None = None
    timezone: str = "UTC"
    max_age: Duration | None = None  # no passing drill for longer: overdue
    timeout: Duration = 4 * 3600.0  # drwatch's own deadline for one drill
    # Also once, shortly after drwatch starts (a first measured RTO without waiting a week).
    run_at_start: bool = False
    # Restore formats that execute (plain SQL, physical copies) without isolation (none): the
    # backups' writers are trusted with drwatch's own user, files and secrets.
    trust_backups: bool = False
    # pg_amcheck on every copy: heapallindexed also proves each heap tuple is in its indexes
    # (reads every index whole: slower on big copies); basic checks pages, tuples and B-trees.
    amcheck: Literal["heapallindexed", "basic"] = "heapallindexed"
    # What would break an application on a copy whose rows all came back (a sequence behind
    # its column): a WARNING in the drill's record and summary, or a failed drill if required.
    app_checks: Literal["warn", "required"] = "warn"
    scratch: ScratchConfig = ScratchConfig()
    full_restore: FullRestoreDrill | None = None
    pitr: PitrDrill | None = None
    cross_region: CrossRegionDrill | None = None
    redis: RedisDrill | None = None
    rds_pitr: RdsPitrDrill | None = None
    rds_snapshot: RdsSnapshotDrill | None = None
    elasticache: ElastiCacheDrill | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone (e.g. UTC, Europe/Paris)") from None
        return v

    @model_validator(mode="after")
    def _valid_schedule(self) -> DrillsConfig:
        where = [("schedule", self.schedule)] + [
            (f"{name}.schedule", drill.schedule) for name, drill in self.drills().items()
        ]
        for path, expression in where:
            try:
                if expression is not None:
                    cron_trigger(expression, self.timezone)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return self

    def drills(self) -> dict[str, ScheduledDrill | ScheduledAwsDrill | ElastiCacheDrill]:
        named = {
            "full_restore": self.full_restore,
            "pitr": self.pitr,
            "cross_region": self.cross_region,
            "redis": self.redis,
            "rds_pitr": self.rds_pitr,
            "rds_snapshot": self.rds_snapshot,
            "elasticache": self.elasticache,
        }
        return {name: drill for name, drill in named.items() if drill is not None}

    def schedule_of(self, scenario: str) -> str:
        """The scenario's cron: its own, else the section's, else the runbook's frequency."""
        own = self.drills()[scenario].schedule
        return own or self.schedule or RUNBOOK_TESTS[scenario][2]

    def max_age_of(self, scenario: str) -> float:
        own = self.drills()[scenario].max_age
        return own or self.max_age or RUNBOOK_TESTS[scenario][3]

    def scenarios(self, possible: dict[str, bool]) -> list[str]:
        """The drills configured that have what they restore (`possible`: by scenario)."""
        return [name for name in self.drills() if possible.get(name, False)]
