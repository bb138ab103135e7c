"""The runbook's Scenario 3 as a drill (`elasticache`): the replication group's newest snapshot
restored into a temporary group (CreateReplicationGroup with SnapshotName), named from the target
and the drill, tagged, production's node type and networking unless the drill sets its own;
reached through the drill's own `url`, its keys counted and drwatch's heartbeat key read back
(the data the snapshot loses, against the redis RPO), then deleted."""

from __future__ import annotations

import time
from typing import Any

import redis as redis_client

from checks.support.aws import aws_client
from checks.support.redisconn import redis_error
from core.config.schema import Config, Target
from core.humanize import count
from exporter.drills import aws_lifecycle
from exporter.drills.aws_names import resource_name, tags
from exporter.drills.heartbeat import judged_loss, redis_tick
from exporter.drills.redis import redis_production_tick
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DrillError

SCENARIO = "elasticache"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    cache, drills = target.redis, target.drills
    assert cache is not None and cache.elasticache is not None and drills is not None
    group = cache.elasticache.replication_group
    assert group is not None
    where = f"elasticache replication group {group}"
    client = aws_client("elasticache", config.aws, cache.elasticache.region, where)
    resource = aws_lifecycle.Resource(
        where, lambda name: client.delete_replication_group(ReplicationGroupId=name)
    )
    truth = redis_production_tick(cache)

    def body(timer: Timer) -> str:
        request, snapshot = _request(client, group, target, timer)
        with timer.phase("request"):
            client.create_replication_group(**request)
            resource.made(request["ReplicationGroupId"])
        return _verify(config, target, client, request["ReplicationGroupId"], snapshot,
                       truth, timer)  # fmt: skip

    return aws_lifecycle.run(config, target, SCENARIO, deadline, resource, body)


def _request(
    client: Any, group: str, target: Target, timer: Timer
) -> tuple[dict[str, Any], str]:
    drill = target.drills.elasticache  # type: ignore[union-attr]
    assert drill is not None
    source = client.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"][0]
    snapshots = client.describe_snapshots(ReplicationGroupId=group).get("Snapshots", [])
    usable = [s for s in snapshots if s.get("SnapshotStatus") == "available"]
    if not usable:
        raise DrillError(f"no available snapshot of replication group {group} to restore")
    newest = max(usable, key=_taken)
    timer.result.values["backup"] = newest["SnapshotName"]
    drill_id, name = resource_name(target.name, 40)
    request: dict[str, Any] = {
        "ReplicationGroupId": name,
        "ReplicationGroupDescription": f"drwatch drill {drill_id} of {target.name}",
        "SnapshotName": newest["SnapshotName"],
        "CacheNodeType": drill.node_type or source.get("CacheNodeType")
        or newest.get("CacheNodeType"),
        "Engine": "redis",
        "NumCacheClusters": 1,
        "Tags": tags(drill_id, target.name),
    }
    if drill.subnet_group:
        request["CacheSubnetGroupName"] = drill.subnet_group
    if drill.security_groups:
        request["SecurityGroupIds"] = drill.security_groups
    timer.result.values["node_type"] = request["CacheNodeType"]
    return request, str(newest["SnapshotName"])


def _taken(snapshot: dict[str, Any]) -> tuple[float, str]:
    nodes = snapshot.get("NodeSnapshots") or [{}]
    when = nodes[0].get("SnapshotCreateTime")
    return (when.timestamp() if when else 0.0, str(snapshot.get("SnapshotName")))


def _verify(
    config: Config,
    target: Target,
    client: Any,
    name: str,
    snapshot: str,
    truth: float | None,
    timer: Timer,
) -> str:
    drill, cache = target.drills.elasticache, target.redis  # type: ignore[union-attr]
    assert drill is not None and cache is not None

    def describe() -> tuple[str, Any]:
        found = client.describe_replication_groups(ReplicationGroupId=name)["ReplicationGroups"]
        groups = found[0].get("NodeGroups") or [{}]
        return str(found[0].get("Status")), groups[0].get("PrimaryEndpoint")

    with timer.phase("provision"):
        endpoint = aws_lifecycle.wait_for(describe, timer, config.drills.aws.poll, name)
    url = drill.url.format(host=endpoint["Address"], port=endpoint["Port"])
    with timer.phase("available"):
        keys = _keys(url, timer, config.drills.aws.poll)
    problems = [] if keys else [f"the group restored from {snapshot} holds no key"]
    with timer.phase("verify"):
        problems += _loss(url, cache.heartbeat.key if cache.heartbeat else None, truth,
                          config.objective(target, SCENARIO).rpo, timer)  # fmt: skip
    timer.result.values.update(keys_loaded=keys, problems=problems)
    return f"restored {name} from snapshot {snapshot}: {count(keys, 'key')}"


def _keys(url: str, timer: Timer, poll: float) -> int:
    """The keys the new group holds, once it answers."""
    while True:
        try:
            with redis_client.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10,
                                             retry_on_timeout=False) as client:  # fmt: skip
                return int(client.dbsize())
        except redis_client.RedisError as exc:
            if timer.deadline - time.monotonic() <= poll:
                raise DrillError(str(redis_error(exc, "the restored group"))) from None
        time.sleep(poll)  # the endpoint comes up on AWS's time; bounded by the deadline


def _loss(
    url: str, key: str | None, truth: float | None, rpo: float | None, timer: Timer
) -> list[str]:
    if key is None or truth is None:
        return []
    with redis_client.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10) as client:
        restored = redis_tick(client.get(key))
    if restored is None:
        return [f"the heartbeat key {key} is not in the snapshot"]
    loss, problem = judged_loss(truth, restored, rpo)
    timer.result.values["measured_data_loss_seconds"] = round(loss, 3)
    return [problem] if problem else []
