"""Redis connections for checks: every socket wait bounded, errors mapped to CheckError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis import exceptions as rexc

from core.config.redis import RedisConfig
from core.errors import CheckError
from core.redact import redact


def redis_error(exc: Exception, what: str) -> CheckError:
    text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if isinstance(exc, rexc.AuthenticationError | rexc.NoPermissionError):
        return CheckError("permission", f"{what}: {text}")
    if isinstance(exc, rexc.TimeoutError):
        return CheckError("timeout", f"{what}: timed out")
    if isinstance(exc, rexc.ConnectionError):
        return CheckError("connect", f"{what}: cannot connect: {text}")
    return CheckError("query", f"{what}: {text}")


@contextmanager
def connection(config: RedisConfig) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(
        config.url,
        password=config.password,
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        socket_keepalive=True,
        retry_on_timeout=False,
        health_check_interval=0,
        client_name="drwatch",
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


def info(client: redis.Redis, section: str) -> dict[str, Any]:
    try:
        result: dict[str, Any] = client.info(section)
    except rexc.RedisError as exc:
        raise redis_error(exc, f"INFO {section}") from None
    return result


def config_get(client: redis.Redis, *names: str) -> dict[str, str] | None:
    """CONFIG GET, or None where the server forbids it (ElastiCache, renamed or ACL'd CONFIG)."""
    try:
        out: dict[str, str] = {}
        for name in names:
            out.update(client.config_get(name))  # type: ignore[arg-type]
        return out
    except rexc.ResponseError:
        return None
    except (rexc.ConnectionError, rexc.TimeoutError) as exc:
        raise redis_error(exc, "CONFIG GET") from None


def run_deadline(config: RedisConfig) -> float:
    """drwatch's deadline for a Redis check run: each command may wait `timeout` on its socket,
    and the socket's own timeout should be the one that reports, naming the command it waited
    for."""
    return config.timeout * 1.5
