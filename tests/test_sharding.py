"""Sharding: every target runs on exactly one replica, the same one whatever the order or the
process, and replicas say which shard of how many they are."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.sharding import Shard
from exporter.remediation.webhook import requested_actions
from sandbox.pgcluster import wait_until
from tests.daemon import DaemonProcess
from tests.helpers import drwatch, make_config, write_config

NAMES = [f"db-{n:03d}" for n in range(600)]


def test_every_target_belongs_to_exactly_one_shard_and_shards_are_even() -> None:
    shards = [Shard(i, 3) for i in range(3)]
    owners = {name: [s.index for s in shards if s.owns(name)] for name in NAMES}
    assert all(len(found) == 1 for found in owners.values())
    sizes = [sum(1 for found in owners.values() if found == [s.index]) for s in shards]
    assert min(sizes) > 600 / 3 * 0.8, sizes  # sha256 spreads names evenly


def test_the_assignment_is_fixed_by_the_name_alone() -> None:
    shuffled = random.Random(7).sample(NAMES, len(NAMES))
    shard = Shard(1, 4)
    assert {n for n in NAMES if shard.owns(n)} == {n for n in shuffled if shard.owns(n)}
    # Pinned: a replica running another drwatch version must agree with the others, so the
    # hash may never change (this list is sha256's, not Python's randomised hash()).
    assert [n for n in NAMES[:12] if Shard(0, 2).owns(n)] == [
        "db-000", "db-002", "db-003", "db-004", "db-005", "db-009", "db-011"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--shard", "2", "--total-shards", "2"),
            "--shard 2: must be from 0 to 1 (--total-shards 2)",
        ),
        (("--total-shards", "0"), "--total-shards 0: must be 1 or more"),
    ],
)
def test_a_shard_outside_the_fleet_is_refused(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    config = write_config(tmp_path / "c.yml", [{"name": "a", "redis": {"url": "redis://x:1/0"}}])
    proc = drwatch("run", "--config", str(config), *args)
    assert proc.returncode == 2 and proc.stderr.strip() == message


def test_two_replicas_split_the_targets_between_them(tmp_path: Path) -> None:
    names = [f"cache-{n}" for n in range(8)]
    targets = [
        {"name": n, "redis": {"url": "redis://127.0.0.1:1/0", "interval": "1s"}} for n in names
    ]
    config = write_config(tmp_path / "c.yml", targets, state_dir=str(tmp_path / "state"))
    replicas = []
    try:
        for index in range(2):
            (tmp_path / str(index)).mkdir()
            replicas.append(
                DaemonProcess(
                    config,
                    tmp_path / str(index),
                    args=("--shard", str(index), "--total-shards", "2"),
                )
            )
        ran: list[set[str]] = []
        for index, replica in enumerate(replicas):
            wait_until(lambda r=replica: r.get("/-/ready")[0] == 200, 30, what="replica ready")
            assert replica.value("drwatch_shard_info", shard=str(index), total_shards="2") == 1
            checked = {
                dict(labels)["target"]
                for (name, labels) in replica.samples()
                if name == "drwatch_check_up"
            }
            assert replica.value("drwatch_shard_targets") == len(checked)
            ran.append(checked)
        assert ran[0] | ran[1] == set(names) and not ran[0] & ran[1]
        assert ran[0] == {n for n in names if Shard(0, 2).owns(n)}
    finally:
        for replica in replicas:
            replica.stop()


def test_each_replicas_webhook_acts_on_its_own_shards_targets_only() -> None:
    """Alertmanager sends every alert to every replica (one webhook URL each): the alert for
    a target is acted on by exactly the replica that runs it, and ignored by the others."""
    remediation = {
        "enabled": True,
        "webhook": {
            "token": "webhook-token-0123456789",
            "alerts": {"DrwatchConnectionPoolSaturation": "terminate_idle_connections"},
        },
        "actions": {"terminate_idle_connections": {"idle_for": "10m"}},
    }
    loaded = make_config(
        [{"name": n, "postgres": {"dsn": "postgresql://127.0.0.1:1/x"}} for n in NAMES[:2]],
        remediation=remediation,
    )
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "DrwatchConnectionPoolSaturation", "target": n},
        }
        for n in NAMES[:2]
    ]
    acted: list[str] = []
    for index in range(2):
        requested, ignored = requested_actions(Shard(index, 2).select(loaded).config, alerts)
        assert ignored == 2 - len(requested)
        acted += requested
    assert sorted(acted) == NAMES[:2]  # each once: db-000 on shard 0, db-001 on shard 1
