"""The heartbeat: the data a recovery would lose, measured rather than inferred.

With `postgres.heartbeat`, the daemon writes a tick on the primary every interval (a one-row
upsert: the only write drwatch makes, into a table the DBA creates and grants it, in a session of
its own with short timeouts). A drill reads production's tick when it starts (what a primary
lost then would have held) and the tick in the copy it restored: the time between them is the
drill's **measured data loss**, compared with the scenario's RPO objective; a copy that loses
more fails the drill. The DBA's part:

    CREATE TABLE drwatch_heartbeat (id int PRIMARY KEY CHECK (id = 1), tick bigint NOT NULL,
                                    at timestamptz NOT NULL);
    GRANT SELECT, INSERT, UPDATE ON drwatch_heartbeat TO drwatch;
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from apscheduler.schedulers.base import BaseScheduler
from psycopg import sql

from checks.support.redisconn import connection
from core.config.postgres import HeartbeatConfig, PostgresConfig
from core.config.redis import RedisConfig, RedisHeartbeatConfig
from core.config.schema import Config
from core.durations import format_duration

log = logging.getLogger("drwatch.heartbeat")


def _table(heartbeat: HeartbeatConfig) -> sql.Identifier:
    return sql.Identifier(*heartbeat.table.split("."))


class HeartbeatWriter:
    """One target's ticks; a failure is said once per change, never at every tick."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.last_write: float | None = None  # when a tick was last written (unix time)
        self._failing = False
        self._lock = threading.Lock()

    def write(self, pg: PostgresConfig, heartbeat: HeartbeatConfig) -> None:
        upsert = sql.SQL(
            "INSERT INTO {t} (id, tick, at) VALUES (1, 1, now()) "
            "ON CONFLICT (id) DO UPDATE SET tick = {t}.tick + 1, at = now()"
        ).format(t=_table(heartbeat))
        timeout_ms = int(max(1.0, min(heartbeat.interval, pg.statement_timeout)) * 1000)
        try:
            with psycopg.connect(
                pg.dsn, autocommit=True, connect_timeout=int(pg.connect_timeout),
                application_name="drwatch", options=f"-c statement_timeout={timeout_ms}",
            ) as conn:  # fmt: skip
                conn.execute(upsert)
        except psycopg.Error as exc:
            self._said(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")
            return
        with self._lock:
            self.last_write = time.time()
        self._said(None)

    def write_redis(self, cache: RedisConfig, heartbeat: RedisHeartbeatConfig) -> None:
        """The key set to now (unix seconds, to the millisecond), on Redis's own clock-free
        value: what the snapshot taken next will hold."""
        now = time.time()
        try:
            with connection(cache) as client:
                client.set(heartbeat.key, f"{now:.3f}")
        except redis.RedisError as exc:
            self._said(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")
            return
        with self._lock:
            self.last_write = now
        self._said(None)

    def _said(self, failure: str | None) -> None:
        with self._lock:
            was, self._failing = self._failing, failure is not None
        if failure and not was:
            log.warning("heartbeat not written: %s", failure, extra={"target": self.target})
        elif was and not failure:
            log.info("heartbeat written again", extra={"target": self.target})


def read_tick(conn: psycopg.Connection[Any], heartbeat: HeartbeatConfig) -> datetime | None:
    """When the newest tick the database holds was written (None: no tick, no table)."""
    query = sql.SQL("SELECT at FROM {} WHERE id = 1").format(_table(heartbeat))
    try:
        row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def production_tick(pg: PostgresConfig) -> float | None:
    """Production's tick as a drill starts: what a primary lost now would have held."""
    assert pg.heartbeat is not None
    try:
        with psycopg.connect(
            pg.dsn, connect_timeout=int(pg.connect_timeout),
            options=f"-c statement_timeout={int(pg.statement_timeout * 1000)}",
        ) as conn:  # fmt: skip
            conn.read_only = True
            at = read_tick(conn, pg.heartbeat)
    except psycopg.Error:
        return None
    return at.timestamp() if at else None


def redis_tick(value: object) -> float | None:
    """The time a heartbeat key holds (None: absent or not a time drwatch wrote)."""
    try:
        return float(value) if isinstance(value, str | bytes) else None
    except ValueError:
        return None


def judged_loss(truth: float, restored: float, rpo: float | None) -> tuple[float, str | None]:
    """(seconds of data lost; the problem when over the RPO)."""
    loss = max(0.0, truth - restored)
    if rpo is not None and loss > rpo:
        return loss, (
            f"measured data loss {format_duration(loss)} (the newest heartbeat in the copy was "
            f"written {format_duration(loss)} before production's when the drill started), "
            f"over the {format_duration(rpo)} RPO objective"
        )
    return loss, None


def measured_loss(
    copy: psycopg.Connection[Any], heartbeat: HeartbeatConfig, truth: float | None,
    rpo: float | None,
) -> tuple[float | None, str | None]:  # fmt: skip
    """(seconds of data the copy lacks, by the heartbeat; the problem when over the RPO)."""
    restored = read_tick(copy, heartbeat)
    if truth is None or restored is None:
        return None, None
    return judged_loss(truth, restored.timestamp(), rpo)


def schedule_heartbeats(
    scheduler: BaseScheduler, config: Config, writers: dict[tuple[str, str], HeartbeatWriter]
) -> None:
    """Each target's ticks (postgres.heartbeat, redis.heartbeat) on its interval, one writer
    per target and store, kept across reloads."""
    for target in config.targets:
        beats: list[tuple[str, Callable[..., None], tuple[Any, ...], float]] = []
        pg, cache = target.postgres, target.redis
        if pg is not None and pg.heartbeat is not None:
            beats.append(("postgres", HeartbeatWriter.write, (pg, pg.heartbeat),
                          pg.heartbeat.interval))  # fmt: skip
        if cache is not None and cache.heartbeat is not None:
            beats.append(("redis", HeartbeatWriter.write_redis, (cache, cache.heartbeat),
                          cache.heartbeat.interval))  # fmt: skip
        for store, write, args, interval in beats:
            writer = writers.setdefault((target.name, store), HeartbeatWriter(target.name))
            suffix = "heartbeat" if store == "postgres" else f"{store}-heartbeat"
            scheduler.add_job(
                write, "interval", seconds=interval, args=(writer, *args),
                id=f"{target.name}/{suffix}", max_instances=1, coalesce=True,
                next_run_time=datetime.now(UTC),
            )  # fmt: skip
