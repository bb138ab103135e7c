"""Aurora's point-in-time restore, as the runbook's Scenario 1 is on Aurora:
RestoreDBClusterToPointInTime into a temporary cluster, then one instance in it (a cluster
answers nothing without one), both named and tagged as the drill's; deleted instance first,
then the cluster, without a final snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.config.aws_drills import RdsPitrDrill
from core.config.schema import Config, Target
from exporter.drills.rds_points import point_in_window
from exporter.drills.result import Timer

# What the instance takes of the request; the rest (networking) is the cluster's.
_INSTANCE_KEYS = ("DBInstanceClass", "PubliclyAccessible", "DBParameterGroupName", "Tags")


def restore(
    config: Config,
    target: Target,
    client: Any,
    source: dict[str, Any],
    drill: RdsPitrDrill,
    name: str,
    request: dict[str, Any],
    timer: Timer,
) -> float:
    """The source instance's cluster restored to the drill's point, one instance added: when
    the point is (unix time)."""
    cluster_id = source["DBClusterIdentifier"]
    cluster = client.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    newest = cluster.get("LatestRestorableTime") or source["LatestRestorableTime"]
    created = cluster.get("ClusterCreateTime") or source["InstanceCreateTime"]
    latest, when = point_in_window(config, target, drill, newest, created, timer)
    at = {"UseLatestRestorableTime": True} if when is None else {"RestoreToTime": when}
    networking = {k: request[k] for k in ("VpcSecurityGroupIds", "DBSubnetGroupName")
                  if k in request}  # fmt: skip
    client.restore_db_cluster_to_point_in_time(
        SourceDBClusterIdentifier=cluster_id, DBClusterIdentifier=name,
        DeletionProtection=False, Tags=request["Tags"], **at, **networking,
    )  # fmt: skip
    client.create_db_instance(
        DBInstanceIdentifier=name, DBClusterIdentifier=name, Engine=source["Engine"],
        **{k: request[k] for k in _INSTANCE_KEYS if k in request},
    )  # fmt: skip
    timer.result.values["source_cluster"] = cluster_id
    return latest.timestamp() if when is None else when.timestamp()


def deleter(client: Any) -> Callable[[str], None]:
    """Deletes the drill's instance, then its cluster."""

    def delete(name: str) -> None:
        client.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
        client.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)

    return delete
