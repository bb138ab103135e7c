"""Redis persistence: is the data on disk, and since when is it not?

Redis counts its start as a save (`rdb_last_save_time` = start time, `rdb_saves:0`), so a server
restarted with persistence off or failing must not look backed up: the last-save timestamp is only
exported once a save really happened, and the `redis` exposure grows from the start time as soon
as anything is written.
"""

from __future__ import annotations

import time

from checks.base import MetricSpec, Observation, Status
from checks.support.redisconn import config_get, connection, info
from core.config.redis import RedisConfig
from core.config.schema import ObjectiveSpec
from core.durations import format_duration

NAME = "redis_persistence"

METRICS = (
    MetricSpec(
        "drwatch_redis_last_save_timestamp_seconds",
        "gauge",
        "When the last successful RDB save finished (absent until one has since the start).",
    ),
    MetricSpec(
        "drwatch_redis_start_timestamp_seconds",
        "gauge",
        "When the server started (Redis reports it as the last save before any real one).",
    ),
    MetricSpec(
        "drwatch_redis_changes_since_last_save",
        "gauge",
        "Writes since the last save (rdb_changes_since_last_save).",
    ),
    MetricSpec("drwatch_redis_saves", "gauge", "RDB saves since the server started (rdb_saves)."),
    MetricSpec("drwatch_redis_last_bgsave_ok", "gauge", "1 if the last background save succeeded."),
    MetricSpec("drwatch_redis_bgsave_in_progress", "gauge", "1 while a background save runs."),
    MetricSpec("drwatch_redis_aof_enabled", "gauge", "1 if the append-only file is on."),
    MetricSpec("drwatch_redis_aof_last_write_ok", "gauge", "1 if the last AOF write succeeded."),
    MetricSpec(
        "drwatch_redis_aof_last_rewrite_ok", "gauge", "1 if the last AOF rewrite succeeded."
    ),
    MetricSpec(
        "drwatch_redis_persistence_configured",
        "gauge",
        "1 if RDB save points or AOF are configured (absent when CONFIG is not allowed).",
    ),
)


class RedisPersistenceCheck:
    name: str = NAME
    metrics: tuple[MetricSpec, ...] = METRICS

    def __init__(self, config: RedisConfig, objective: ObjectiveSpec) -> None:
        self.config = config
        self.rpo = objective.rpo
        # (run_id, rdb_last_save_time) of a save this check saw succeed: once a later bgsave
        # fails, that time is still a real save, whatever the heuristics below would say.
        self.seen_save: tuple[str, float] | None = None

    def _really_saved(
        self, run_id: str, last_save: float, started_before: float, saves: object, bgsave_ok: bool
    ) -> bool:
        """Whether rdb_last_save_time is a save, not the start Redis counts as one."""
        if self.seen_save == (run_id, last_save):
            return True
        # The start is at most one second before `started_before` (uptime is whole seconds),
        # so a save time two seconds past it cannot be the start.
        saved = last_save >= int(started_before) + 2 or (
            saves is not None and int(str(saves)) > 0 and bgsave_ok
        )
        if saved and bgsave_ok:
            self.seen_save = (run_id, last_save)
        return saved

    def collect(self) -> Observation:
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
        aof_write_ok = persistence.get("aof_last_write_status", "ok") == "ok"
        aof_rewrite_ok = persistence.get("aof_last_bgrewrite_status", "ok") == "ok"
        configured: bool | None = None
        if settings is not None:
            configured = (
                bool(settings.get("save", "").strip()) or settings.get("appendonly") == "yes"
            )

        obs = Observation(Status.OK, "")
        obs.add("drwatch_redis_last_save_timestamp_seconds", last_save if really_saved else None)
        obs.add("drwatch_redis_start_timestamp_seconds", started)
        obs.add("drwatch_redis_changes_since_last_save", changes)
        obs.add("drwatch_redis_saves", None if saves is None else int(saves))
        obs.add("drwatch_redis_last_bgsave_ok", bgsave_ok)
        obs.add(
            "drwatch_redis_bgsave_in_progress", int(persistence.get("rdb_bgsave_in_progress", 0))
        )
        obs.add("drwatch_redis_aof_enabled", aof)
        obs.add("drwatch_redis_aof_last_write_ok", aof_write_ok)
        obs.add("drwatch_redis_aof_last_rewrite_ok", aof_rewrite_ok)
        obs.add("drwatch_redis_persistence_configured", configured)
        # With AOF on, every write is on disk within a second (appendfsync everysec).
        exposure = 0.0 if changes == 0 or (aof and aof_write_ok) else max(0.0, now - last_save)
        obs.exposures["redis"] = exposure
        obs.values.update(
            last_save_age_seconds=now - last_save if really_saved else None,
            changes_since_last_save=changes,
            last_bgsave_status=persistence.get("rdb_last_bgsave_status"),
            aof_enabled=aof,
            persistence_configured="unknown" if configured is None else configured,
            redis_exposure_seconds=exposure,
        )
        problems = []
        if not bgsave_ok:
            problems.append("the last background save failed")
        if aof and not aof_write_ok:
            problems.append("AOF writes are failing")
        if aof and not aof_rewrite_ok:
            problems.append("the last AOF rewrite failed")
        if configured is False:
            problems.append("persistence is off (no save points, no AOF)")
        saved = (
            f"last save {format_duration(now - last_save)} ago"
            if really_saved
            else f"no save since the start {format_duration(now - started)} ago"
        )
        objective = f" (objective {format_duration(self.rpo)})" if self.rpo is not None else ""
        headline = f"redis exposure {format_duration(exposure)}{objective}, {changes} changes"
        obs.summary = "; ".join([f"{headline}, {saved}", *problems])
        if (not bgsave_ok) or (aof and not aof_write_ok):
            obs.status = Status.CRITICAL
        elif problems:
            obs.status = Status.WARNING
        if self.rpo is not None and exposure > self.rpo:
            obs.status = Status.CRITICAL
        return obs
