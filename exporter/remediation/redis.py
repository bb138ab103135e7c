"""Redis side of remediation: BGSAVE when the data at risk is over its objective."""

from __future__ import annotations

from typing import Literal

from redis import exceptions as rexc

from checks.support.redisconn import connection, info, redis_error
from core.config.redis import RedisConfig
from core.errors import CheckError

BgsaveOutcome = Literal["executed", "dry_run", "skipped", "failed"]


def bgsave(config: RedisConfig, dry_run: bool) -> tuple[BgsaveOutcome, str]:
    """Starts a background save unless one is running; (outcome, reason)."""
    try:
        with connection(config) as client:
            persistence = info(client, "persistence")
            if persistence.get("rdb_bgsave_in_progress"):
                return "skipped", "a save is already in progress"
            if persistence.get("aof_rewrite_in_progress"):
                return "skipped", "an AOF rewrite is in progress"
            if dry_run:
                return "dry_run", "would start a background save"
            try:
                client.bgsave()
            except rexc.ResponseError as exc:
                # A save that started between INFO and BGSAVE: Redis refuses the second one.
                if "in progress" in str(exc):
                    return "skipped", str(exc)
                raise redis_error(exc, "BGSAVE") from None
            except rexc.RedisError as exc:
                raise redis_error(exc, "BGSAVE") from None
    except CheckError as exc:
        return "failed", str(exc)
    return "executed", "background save started"
