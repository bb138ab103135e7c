"""The Redis snapshot remediation against a real redis-server: one BGSAVE per cooldown, none
while a save runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from exporter.remediation.engine import RemediationEngine
from exporter.runtime.results import CheckResult
from sandbox.pgcluster import wait_until
from sandbox.redisserver import RedisServer
from tests.helpers import CheckHarness, make_config


@pytest.fixture
def server() -> Iterator[RedisServer]:
    r = RedisServer().start(save="")
    try:
        yield r
    finally:
        r.destroy()


def bgsave_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats").get("cmdstat_bgsave")
    return int(stats["calls"]) if stats else 0


def test_bgsave_once_per_cooldown_and_never_during_a_save(
    server: RedisServer, tmp_path: Path
) -> None:
    loaded = make_config(
        [
            {
                "name": "cache",
                "objectives": {"redis": {"rpo": "1s"}},
                "redis": {"url": server.url},
                "remediation": {"enabled": True, "dry_run": False},
            }
        ],
        state_dir=str(tmp_path),
        remediation={"actions": {"redis_bgsave": {"cooldown": "30m"}}},
    )
    config, target = loaded.config, loaded.config.targets[0]
    harness = CheckHarness(loaded)
    client = server.client()
    now = [10_000.0]
    engine = RemediationEngine(clock=lambda: now[0])

    def over_objective() -> dict[str, CheckResult]:
        client.set("k", time.time())
        box: list[CheckResult] = []

        def measured() -> bool:
            box[:] = [harness.run("redis_persistence")]
            exposure = box[0].exposures.get("redis")
            return exposure is not None and exposure > 1

        wait_until(measured, 15, what="redis exposure over its objective")
        return {"redis_persistence": box[0]}

    def saving() -> bool:
        return bool(client.info("persistence")["rdb_bgsave_in_progress"])

    first = engine.run(config, target, over_objective())
    assert [(d.action, d.outcome) for d in first] == [("redis_bgsave", "executed")]
    assert "over its objective 1s" in first[0].trigger
    assert first[0].reason == "background save started"
    assert bgsave_calls(client) == 1
    wait_until(lambda: not saving(), 15, what="bgsave finished")

    now[0] += 29 * 60
    again = engine.run(config, target, over_objective())
    assert [(d.outcome, d.reason) for d in again] == [("skipped", "cooldown: 60s left")]
    assert bgsave_calls(client) == 1

    now[0] += 60
    assert [d.outcome for d in engine.run(config, target, over_objective())] == ["executed"]
    assert bgsave_calls(client) == 2
    wait_until(lambda: not saving(), 15, what="bgsave finished")

    # A save that takes a while (Redis' own per-key delay), started by someone else.
    client.mset({f"slow{i}": i for i in range(50)})
    client.config_set("rdb-key-save-delay", 200_000)
    client.bgsave()
    assert saving()
    now[0] += 3600
    during = engine.run(config, target, over_objective())
    assert [(d.outcome, d.reason) for d in during] == [("skipped", "a save is already in progress")]
    assert bgsave_calls(client) == 3, "only the save started by the test"


def test_redis_bgsave_dry_run_and_exposure_within_objective(
    server: RedisServer, tmp_path: Path
) -> None:
    loaded = make_config(
        [{"name": "cache", "objectives": {"redis": {"rpo": "1h"}}, "redis": {"url": server.url}}],
        state_dir=str(tmp_path),
        remediation={"enabled": True, "actions": {"redis_bgsave": {}}},
    )
    config, target = loaded.config, loaded.config.targets[0]
    harness = CheckHarness(loaded)
    server.client().set("k", 1)
    engine = RemediationEngine()
    within = harness.run("redis_persistence")
    assert within.up, within.summary
    assert engine.run(config, target, {"redis_persistence": within}) == []

    strict = make_config(
        [{"name": "cache", "objectives": {"redis": {"rpo": "0s"}}, "redis": {"url": server.url}}],
        state_dir=str(tmp_path),
        remediation={"enabled": True, "actions": {"redis_bgsave": {}}},
    )
    over = CheckHarness(strict).run("redis_persistence")
    decisions = engine.run(strict.config, strict.config.targets[0], {"redis_persistence": over})
    assert [d.outcome for d in decisions] == ["dry_run"]
    assert bgsave_calls(server.client()) == 0
