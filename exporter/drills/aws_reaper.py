"""What AWS drills left behind (a drwatch killed mid-drill, a delete AWS refused): at start and
every hour, instances and replication groups whose name has the drill prefix **and** that carry
the drill tag, older than the drill's deadline, are deleted and said. Nothing with only one of
the two marks is touched."""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.support.aws import aws_client, aws_error
from core.config.schema import Config, Target
from exporter.drills.aws_names import PREFIX, is_drills

log = logging.getLogger("drwatch.drills")


def reap(config: Config, now: float | None = None) -> list[str]:
    """The leftovers deleted, as `kind name`, once per service and region."""
    now = time.time() if now is None else now
    deleted: list[str] = []
    seen: set[tuple[str, str | None]] = set()
    for target in config.targets:
        drills = target.drills
        if drills is None:
            continue
        age = drills.timeout
        rds, cache = target.rds, target.redis
        if rds is not None and (drills.rds_pitr or drills.rds_snapshot) and (
            ("rds", rds.region) not in seen
        ):
            seen.add(("rds", rds.region))
            deleted += _instances(config, target, age, now)
        elasticache = cache.elasticache if cache is not None else None
        if elasticache is not None and drills.elasticache and (
            ("elasticache", elasticache.region) not in seen
        ):
            seen.add(("elasticache", elasticache.region))
            deleted += _groups(config, target, age, now)
    return deleted


def _instances(config: Config, target: Target, age: float, now: float) -> list[str]:
    assert target.rds is not None
    where = "rds drill leftovers"
    try:
        client = aws_client("rds", config.aws, target.rds.region, where)
        found: list[dict[str, Any]] = []
        for page in client.get_paginator("describe_db_instances").paginate():
            found += page["DBInstances"]
        out = []
        for instance in found:
            name, created = instance["DBInstanceIdentifier"], instance.get("InstanceCreateTime")
            if not name.startswith(PREFIX) or created is None or now - created.timestamp() < age:
                continue
            if not is_drills(name, instance.get("TagList") or []):
                continue
            client.delete_db_instance(
                DBInstanceIdentifier=name, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
            out.append(_said("rds instance", name, now - created.timestamp()))
        for cluster in client.describe_db_clusters().get("DBClusters", []):
            name, created = cluster["DBClusterIdentifier"], cluster.get("ClusterCreateTime")
            if not name.startswith(PREFIX) or created is None or now - created.timestamp() < age:
                continue
            if not is_drills(name, cluster.get("TagList") or []):
                continue
            # an Aurora drill's cluster: its instance (the same name) was deleted above
            client.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
            out.append(_said("rds cluster", name, now - created.timestamp()))
        return out
    except (BotoCoreError, ClientError) as exc:
        log.warning("AWS drill leftovers not checked: %s", aws_error(where, exc, "reap"))
        return []


def _groups(config: Config, target: Target, age: float, now: float) -> list[str]:
    assert target.redis is not None and target.redis.elasticache is not None
    where = "elasticache drill leftovers"
    try:
        client = aws_client("elasticache", config.aws, target.redis.elasticache.region, where)
        out = []
        for group in client.describe_replication_groups().get("ReplicationGroups", []):
            name, created = group["ReplicationGroupId"], group.get("ReplicationGroupCreateTime")
            if not name.startswith(PREFIX):
                continue
            if created is not None and now - created.timestamp() < age:
                continue
            tag_list = client.list_tags_for_resource(ResourceName=group["ARN"]).get("TagList", [])
            if not is_drills(name, tag_list):
                continue
            client.delete_replication_group(ReplicationGroupId=name)
            out.append(_said("elasticache replication group", name,
                             now - created.timestamp() if created else None))  # fmt: skip
        return out
    except (BotoCoreError, ClientError) as exc:
        log.warning("AWS drill leftovers not checked: %s", aws_error(where, exc, "reap"))
        return []


def _said(kind: str, name: str, age: float | None) -> str:
    old = "" if age is None else f", {age / 3600:.1f} h old"
    log.warning("deleted an AWS drill's leftover: %s %s (tagged as a drill%s)", kind, name, old)
    return f"{kind} {name}"
