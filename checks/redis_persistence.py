"""Redis persistence: is the data on disk, and since when is it not?

Redis counts its start as a save (`rdb_last_save_time` = start time, `rdb_saves:0`), so a server
restarted with persistence off or failing must not look backed up: the last-save timestamp is only
exported once a save really happened, and the `redis` exposure grows from the start time as soon
as anything is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.redisconn import config_get, connection, info, run_deadline
from core.config.redis import RedisConfig
from core.config.schema import ObjectiveSpec
from core.durations import format_duration
from core.metrics import gauge

NAME = "redis_persistence"

REDIS_LAST_SAVE_TIMESTAMP_SECONDS = gauge(
    "drwatch_redis_last_save_timestamp_seconds",
    "When the last successful RDB save finished (absent until one has since the start).",
)
REDIS_START_TIMESTAMP_SECONDS = gauge(
    "drwatch_redis_start_timestamp_seconds",
    "When the server started (Redis reports it as the last save before any real one).",
)
REDIS_CHANGES_SINCE_LAST_SAVE = gauge(
    "drwatch_redis_changes_since_last_save",
    "Writes since the last save (rdb_changes_since_last_save).",
)
REDIS_SAVES = gauge("drwatch_redis_saves", "RDB saves since the server started (rdb_saves).")
REDIS_LAST_BGSAVE_OK = gauge(
    "drwatch_redis_last_bgsave_ok", "1 if the last background save succeeded."
)
REDIS_BGSAVE_IN_PROGRESS = gauge(
    "drwatch_redis_bgsave_in_progress", "1 while a background save runs."
)
REDIS_AOF_ENABLED = gauge("drwatch_redis_aof_enabled", "1 if the append-only file is on.")
REDIS_AOF_LAST_WRITE_OK = gauge(
    "drwatch_redis_aof_last_write_ok", "1 if the last AOF write succeeded."
)
REDIS_AOF_LAST_REWRITE_OK = gauge(
    "drwatch_redis_aof_last_rewrite_ok", "1 if the last AOF rewrite succeeded."
)
REDIS_PERSISTENCE_CONFIGURED = gauge(
    "drwatch_redis_persistence_configured",
    "1 if RDB save points or AOF are configured (absent when CONFIG is not allowed).",
)

METRICS = (
    REDIS_LAST_SAVE_TIMESTAMP_SECONDS,
    REDIS_START_TIMESTAMP_SECONDS,
    REDIS_CHANGES_SINCE_LAST_SAVE,
    REDIS_SAVES,
    REDIS_LAST_BGSAVE_OK,
    REDIS_BGSAVE_IN_PROGRESS,
    REDIS_AOF_ENABLED,
    REDIS_AOF_LAST_WRITE_OK,
    REDIS_AOF_LAST_REWRITE_OK,
    REDIS_PERSISTENCE_CONFIGURED,
)


@dataclass(frozen=True)
class _Health:
    bgsave_ok: bool
    aof_write_failing: bool  # only with AOF on
    aof_rewrite_failing: bool


class RedisPersistenceCheck(Check[tuple[str, float] | None]):
    """Its state: (run_id, rdb_last_save_time) of a save it saw succeed; once a later bgsave
    fails, that time is still a real save, whatever the heuristics below would say."""

    def __init__(self, config: RedisConfig, objective: ObjectiveSpec) -> None:
        super().__init__(None)
        self.config = config
        self.rpo = objective.rpo

    def _really_saved(
        self, run_id: str, last_save: float, started_before: float, saves: object, bgsave_ok: bool
    ) -> bool:
        """Whether rdb_last_save_time is a save, not the start Redis counts as one."""
        if self.state == (run_id, last_save):
            return True
        # The start is at most one second before `started_before` (uptime is whole seconds),
        # so a save time two seconds past it cannot be the start.
        saved = last_save >= int(started_before) + 2 or (
            saves is not None and int(str(saves)) > 0 and bgsave_ok
        )
        if saved and bgsave_ok:
            self.state = (run_id, last_save)
        return saved

    def run(self) -> Observation:
        with connection(self.config) as client:
            persistence = info(client, "persistence")
            server = info(client, "server")
            settings = config_get(client, "save", "appendonly")
        now = time.time()
        started = now - float(server.get("uptime_in_seconds", 0))
        last_save = float(persistence["rdb_last_save_time"])
        saves = persistence.get("rdb_saves")  # Redis >= 7; counts failed attempts too
        changes = int(persistence["rdb_changes_since_last_save"])
        bgsave_ok = persistence.get("rdb_last_bgsave_status") == "ok"
        really_saved = self._really_saved(
            str(server.get("run_id")), last_save, started, saves, bgsave_ok
        )
        aof = bool(int(persistence.get("aof_enabled", 0)))
        health = _Health(
            bgsave_ok=bgsave_ok,
            aof_write_failing=aof and persistence.get("aof_last_write_status", "ok") != "ok",
            aof_rewrite_failing=aof and persistence.get("aof_last_bgrewrite_status", "ok") != "ok",
        )
        configured: bool | None = None
        if settings is not None:
            configured = (
                bool(settings.get("save", "").strip()) or settings.get("appendonly") == "yes"
            )
        obs = Observation(Status.OK, "")
        obs.add(REDIS_LAST_SAVE_TIMESTAMP_SECONDS, last_save if really_saved else None)
        obs.add(REDIS_START_TIMESTAMP_SECONDS, started)
        obs.add(REDIS_CHANGES_SINCE_LAST_SAVE, changes)
        obs.add(REDIS_SAVES, None if saves is None else int(saves))
        obs.add(REDIS_LAST_BGSAVE_OK, bgsave_ok)
        obs.add(REDIS_BGSAVE_IN_PROGRESS, int(persistence.get("rdb_bgsave_in_progress", 0)))
        obs.add(REDIS_AOF_ENABLED, aof)
        obs.add(REDIS_AOF_LAST_WRITE_OK, persistence.get("aof_last_write_status", "ok") == "ok")
        obs.add(
            REDIS_AOF_LAST_REWRITE_OK, persistence.get("aof_last_bgrewrite_status", "ok") == "ok"
        )
        obs.add(REDIS_PERSISTENCE_CONFIGURED, configured)
        # With AOF on, every write is on disk within a second (appendfsync everysec).
        exposure = (
            0.0
            if changes == 0 or (aof and not health.aof_write_failing)
            else max(0.0, now - last_save)
        )
        obs.exposures["redis"] = exposure
        obs.values.update(
            last_save_age_seconds=now - last_save if really_saved else None,
            changes_since_last_save=changes,
            last_bgsave_status=persistence.get("rdb_last_bgsave_status"),
            aof_enabled=aof,
            persistence_configured="unknown" if configured is None else configured,
            redis_exposure_seconds=exposure,
        )
        saved = (
            f"last save {format_duration(now - last_save)} ago"
            if really_saved
            else f"no save since the start {format_duration(now - started)} ago"
        )
        self._judge(obs, health, exposure, saved, configured)
        return obs

    def _judge(
        self,
        obs: Observation,
        health: _Health,
        exposure: float,
        saved: str,
        configured: bool | None,
    ) -> None:
        problems = []
        if not health.bgsave_ok:
            problems.append("the last background save failed")
        if health.aof_write_failing:
            problems.append("AOF writes are failing")
        if health.aof_rewrite_failing:
            problems.append("the last AOF rewrite failed")
        if configured is False:
            problems.append("persistence is off (no save points, no AOF)")
        objective = f" (objective {format_duration(self.rpo)})" if self.rpo is not None else ""
        changes = obs.values["changes_since_last_save"]
        headline = f"redis exposure {format_duration(exposure)}{objective}, {changes} changes"
        obs.summary = "; ".join([f"{headline}, {saved}", *problems])
        if not health.bgsave_ok or health.aof_write_failing:
            obs.status = Status.CRITICAL
        elif problems:
            obs.status = Status.WARNING
        if self.rpo is not None and exposure > self.rpo:
            obs.status = Status.CRITICAL


def _plan(context: BuildContext) -> Planned | None:
    redis = context.target.redis
    if redis is None or not redis.persistence.enabled:
        return None
    check = RedisPersistenceCheck(redis, context.objective("redis"))
    return scheduled(check, redis.persistence, redis.interval, run_deadline(redis))


DEFINITION = CheckDef(
    name=NAME,
    section="redis",
    source="`INFO persistence`, `CONFIG GET save appendonly`",
    tells="last real save (Redis counts its start as one; drwatch does not), last bgsave and AOF "
    'status, changes since the save, whether persistence is configured at all ("unknown" where '
    "CONFIG is forbidden, as on ElastiCache); the **`redis` exposure**",
    metrics=METRICS,
    scenarios=("redis",),
    plan=_plan,
)
