"""The `drills:` section: scheduled, isolated restores that prove a backup restores, and time it.

A drill restores into a scratch PostgreSQL: by default a throwaway cluster drwatch starts itself
(initdb into `scratch.dir`, a Unix socket only, removed afterwards); or a staging server given
by `scratch.dsn`, where drwatch creates a database of its own and drops it afterwards.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import AwareDatetime, Field, field_validator, model_validator

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

    @field_validator("pg_bin", "dir", "user", "dsn", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v  # `${VAR:-}` left empty: the default


class FullRestoreDrill(Strict):
    jobs: int = Field(2, ge=1, le=64)  # pg_restore --jobs


class PgBackRestSource(Strict):
    """Restore with pgBackRest itself: its config file (the repository and its credentials) and
    stanza, as on the host that would restore for real."""

    config: str = Field(min_length=1)
    stanza: str = Field(min_length=1)


class PitrDrill(Strict):
    """A physical base backup restored and the WAL archive replayed on it (to its end, or to
    `target_time`). `base_store` holds one directory (prefix) per backup, as `pg_basebackup -Ft`
    writes it: base.tar[.gz], pg_wal.tar[.gz] when WAL is included, backup_manifest. Or
    `pgbackrest`: pgBackRest restores its newest set and fetches the WAL."""

    base_store: StoreUrl | None = None  # no physical base backup: the drill says PITR is impossible
    pgbackrest: PgBackRestSource | None = None
    target_time: AwareDatetime | None = (
        None  # with its offset: the copy's time zone is not production's
    )

    @model_validator(mode="after")
    def _one_source(self) -> PitrDrill:
        if self.base_store and self.pgbackrest:
            raise ValueError("base_store and pgbackrest are two sources: keep one")
        return self


class RedisDrill(Strict):
    """The newest RDB snapshot loaded into a scratch redis-server on loopback."""


class DrillsConfig(Strict):
    schedule: str
    timezone: str = "UTC"
    max_age: Duration = 8 * 86400.0  # no passing drill for longer: overdue
    timeout: Duration = 4 * 3600.0  # drwatch's own deadline for one drill
    # Also once, shortly after drwatch starts (a first measured RTO without waiting a week).
    run_at_start: bool = False
    scratch: ScratchConfig = ScratchConfig()
    full_restore: FullRestoreDrill | None = None
    pitr: PitrDrill | None = None
    redis: RedisDrill | None = None

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
        try:
            cron_trigger(self.schedule, self.timezone)
        except ValueError as exc:
            raise ValueError(f"schedule: {exc}") from None
        return self

    def scenarios(self, has_backups: bool, has_wal: bool, has_snapshots: bool) -> list[str]:
        """The drills configured that have what they restore (a dump store, a WAL store, a
        snapshot store)."""
        wanted = (
            ("full_restore", self.full_restore, has_backups),
            ("pitr", self.pitr, has_wal),
            ("redis", self.redis, has_snapshots),
        )
        return [name for name, drill, possible in wanted if drill is not None and possible]
