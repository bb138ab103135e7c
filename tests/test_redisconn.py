"""The Redis client every Redis check uses: bounded waits, errors by category, no secret."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from sandbox.pgcluster import free_port
from sandbox.redisserver import RedisServer
from tests.helpers import redis_harness


def test_redis_down_or_silent_then_back(tmp_path: Path) -> None:
    port = free_port()
    harness = redis_harness(f"redis://127.0.0.1:{port}/0", tmp_path, timeout="1s")
    down = harness.run("redis_persistence")
    assert not down.up and down.error_reasons == ("connect",) and "cannot connect" in down.summary
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", port))
        silent.listen(8)
        started = time.monotonic()
        hung = harness.run("redis_persistence")
        assert time.monotonic() - started < 3
        assert not hung.up and hung.error_reasons == ("timeout",), hung.summary
    back = RedisServer(port=port).start()
    try:
        assert harness.run("redis_persistence").up
    finally:
        back.destroy()


def test_wrong_password_is_a_permission_error_without_the_secret(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.start(password="the-right-one")
    secret = "Wr0ng-redis-s3cret"
    result = redis_harness(f"redis://:{secret}@127.0.0.1:{redis_server.port}/0", tmp_path).run(
        "redis_persistence"
    )
    assert not result.up and result.error_reasons == ("permission",)
    assert secret not in result.summary
    ok = redis_harness(redis_server.url, tmp_path, password="the-right-one").run(
        "redis_persistence"
    )
    assert ok.up, ok.summary
