"""The runbook's AWS procedures drilled against moto's server (RDS, ElastiCache, KMS over HTTP):
the calls made, the temporary resources tagged and deleted in every outcome, the waits bounded,
the budget deferring; the data side against a real PostgreSQL and a real Redis standing in for
the restored endpoints (verify_dsn and url name them instead of moto's addresses)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.config.schema import Config
from exporter.drills import aws_reaper, elasticache_restore, rds_restore
from exporter.drills.engine import DrillEngine
from sandbox.pgcluster import PgCluster
from sandbox.redisserver import RedisServer
from sandbox.seed import seed
from tests.helpers import AWS, make_config, reachable, write_keys

ROWS = 200


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",  # type: ignore[call-overload]
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret")  # fmt: skip


@pytest.fixture(scope="module")
def estate() -> Iterator[PgCluster]:
    """Production (a real PostgreSQL: what copies are compared with) and two stand-ins for a
    restored instance: `app` itself (a whole copy) and `short` (rows missing)."""
    cluster = PgCluster().init(None).start()
    cluster.execute("CREATE DATABASE app")
    with cluster.connect("app") as conn:
        seed(conn, debates=ROWS)
    cluster.execute("CREATE DATABASE short TEMPLATE app")
    cluster.execute("DELETE FROM debates WHERE id % 2 = 0", "short")
    try:
        yield cluster
    finally:
        cluster.destroy()


def _prod(endpoint: str, name: str, **extra: Any) -> None:
    _client("rds", endpoint).create_db_instance(
        DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
        MasterUsername="app", MasterUserPassword="production-secret", AllocatedStorage=20,
        BackupRetentionPeriod=7, **extra,
    )  # fmt: skip


def _config(cluster: PgCluster, tmp_path: Path, endpoint: str, instance: str,
            standin: str = "app", **drills: Any) -> Config:  # fmt: skip
    verify = f"host=127.0.0.1 port={cluster.port} user=postgres dbname={standin}"
    target = {
        "name": "app",
        "postgres": {"dsn": cluster.dsn("app"), "verification": {
            "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}]}},
        "rds": {"instance": instance},
        "drills": {"timeout": "2m", "rds_pitr": {"verify_dsn": verify},
                   "rds_snapshot": {"verify_dsn": verify, "snapshot_type": "manual"}, **drills},
    }  # fmt: skip
    return make_config([target], state_dir=str(tmp_path), aws={**AWS, "endpoint_url": endpoint},
                       drills={"aws": {"poll": "100ms"}}).config  # fmt: skip


def _drill_instances(endpoint: str) -> list[str]:
    found = _client("rds", endpoint).describe_db_instances()["DBInstances"]
    return [i["DBInstanceIdentifier"] for i in found if i["DBInstanceIdentifier"].startswith(
        "drwatch-drill-")]  # fmt: skip


def _still_creating(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drill's RDS client says its instance is `creating` (RDS can take longer than a drill
    allows; moto makes everything available at once); every other call goes to moto."""
    real = rds_restore.aws_client

    class Creating:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def describe_db_instances(self, **kw: Any) -> Any:
            out = self.inner.describe_db_instances(**kw)
            if kw.get("DBInstanceIdentifier", "").startswith("drwatch-drill-"):
                out["DBInstances"][0]["DBInstanceStatus"] = "creating"
            return out

    monkeypatch.setattr(rds_restore, "aws_client", lambda *a: Creating(real(*a)))


def test_rds_pitr_restores_a_tagged_instance_checks_it_and_deletes_it(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    _prod(moto_endpoint, "pitr-prod")
    config = _config(estate, tmp_path, moto_endpoint, "pitr-prod")
    began = time.monotonic()
    result = rds_restore.run_pitr(config, config.targets[0], time.monotonic() + 120)
    took = time.monotonic() - began
    assert result.ok, result.summary
    rows = estate.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert result.point == "newest" and result.tables["debates"] == (rows, 0)
    assert {"request", "provision", "available", "verify", "delete"} <= set(result.phases)
    assert result.values["instance_class"] == "db.t3.micro"
    deleted = result.values["deleted"]
    assert deleted.startswith("drwatch-drill-app-") and _drill_instances(moto_endpoint) == []
    # the RTO is to a checked, connectable copy: the delete comes after the clock stops
    assert result.duration_seconds <= took - result.phases["delete"]
    # in the record, the report and its schedule like every drill, phases and all
    from exporter.drills.history import drill_history, record_of
    from exporter.reports.evidence import build

    drill_history(str(tmp_path), config.drills).append([record_of(result, 1800.0)])
    report = build(config, "c.yml", time.time() - 86400)
    (scenario,) = [s for s in report["targets"][0]["scenarios"] if s["scenario"] == "rds_pitr"]
    assert scenario["schedule"]["test"] == "WAL replay test"
    assert scenario["rto"]["objective_seconds"] == 1800.0  # the runbook's pitr RTO
    assert set(scenario["records"][0]["phases"]) >= {"provision", "available", "verify"}


def test_a_restored_copy_that_lacks_rows_fails_and_is_deleted(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    _prod(moto_endpoint, "short-prod")
    config = _config(estate, tmp_path, moto_endpoint, "short-prod", standin="short")
    result = rds_restore.run_pitr(config, config.targets[0], time.monotonic() + 120)
    assert not result.ok and "debates" in result.summary, result.summary
    assert result.values["deleted"] and _drill_instances(moto_endpoint) == []


def test_a_restore_that_never_becomes_available_fails_at_the_deadline_and_is_deleted(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance stays `creating` (RDS can take longer than the drill allows): the drill
    ends at its deadline naming the status, and the instance is deleted all the same."""
    _prod(moto_endpoint, "slow-prod")
    _still_creating(monkeypatch)
    config = _config(estate, tmp_path, moto_endpoint, "slow-prod")
    started = time.monotonic()
    result = rds_restore.run_pitr(config, config.targets[0], time.monotonic() + 3)
    assert time.monotonic() - started < 30
    assert not result.ok and "did not become available within the drill's deadline (last " \
        "status: creating)" in result.summary, result.summary
    assert _drill_instances(moto_endpoint) == []


def test_a_disabled_kms_key_and_a_missing_snapshot_fail_by_name_before_anything_is_made(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    kms = _client("kms", moto_endpoint)
    made = kms.create_key(Description="prod")["KeyMetadata"]
    key = made["Arn"]
    kms.disable_key(KeyId=made["KeyId"])
    _prod(moto_endpoint, "kms-prod", StorageEncrypted=True, KmsKeyId=key)
    config = _config(estate, tmp_path, moto_endpoint, "kms-prod")
    result = rds_restore.run_pitr(config, config.targets[0], time.monotonic() + 60)
    assert not result.ok and f"KMS key {key} is Disabled" in result.summary, result.summary
    _prod(moto_endpoint, "nosnap-prod")
    plain = _config(estate, tmp_path, moto_endpoint, "nosnap-prod")
    snapshot = rds_restore.run_snapshot(plain, plain.targets[0], time.monotonic() + 60)
    assert not snapshot.ok
    assert "no available manual snapshot of nosnap-prod matching '*'" in snapshot.summary
    assert "deleted" not in result.values and _drill_instances(moto_endpoint) == []


def test_the_newest_manual_snapshot_restores(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    _prod(moto_endpoint, "snap-prod")
    rds = _client("rds", moto_endpoint)
    for name in ("snap-prod-1", "snap-prod-2"):
        rds.create_db_snapshot(DBSnapshotIdentifier=name, DBInstanceIdentifier="snap-prod")
    config = _config(estate, tmp_path, moto_endpoint, "snap-prod")
    result = rds_restore.run_snapshot(config, config.targets[0], time.monotonic() + 120)
    assert result.ok, result.summary
    assert result.values["backup"] == "snap-prod-2" and _drill_instances(moto_endpoint) == []


def test_the_budget_defers_a_drill_and_nothing_is_made(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    _prod(moto_endpoint, "budget-prod")
    config = _config(estate, tmp_path, moto_endpoint, "budget-prod")
    month = time.strftime("%Y-%m", time.gmtime())
    (tmp_path / "aws-drill-hours.json").write_text(json.dumps({"month": month, "hours": 100.0}))
    (result,) = DrillEngine().run(config, config.targets[0], "rds_pitr")
    assert result.deferred and not result.ok
    assert "used 100.0 of this month's 100 instance-hours" in result.summary
    assert _drill_instances(moto_endpoint) == []


def test_the_reaper_deletes_only_old_resources_with_both_marks(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    """A drill's instance a killed drwatch left (the prefix and the tag) is deleted once older
    than the drill's deadline; one with the prefix only, or the tag only, is never touched."""
    _prod(moto_endpoint, "reap-prod")
    rds = _client("rds", moto_endpoint)
    made = {
        "drwatch-drill-app-left": [{"Key": "drwatch-drill", "Value": "x"}],
        "drwatch-drill-app-untagged": [],
        "someone-elses": [{"Key": "drwatch-drill", "Value": "x"}],
    }
    for name, tag_list in made.items():
        rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier="reap-prod", TargetDBInstanceIdentifier=name,
            UseLatestRestorableTime=True, Tags=tag_list)  # fmt: skip
    config = _config(estate, tmp_path, moto_endpoint, "reap-prod")
    assert aws_reaper.reap(config) == []  # younger than the drill's deadline
    assert aws_reaper.reap(config, now=time.time() + 3600) == ["rds instance drwatch-drill-app-left"]
    left = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    assert {"drwatch-drill-app-untagged", "someone-elses"} <= left
    assert "drwatch-drill-app-left" not in left
    for name in ("drwatch-drill-app-untagged", "someone-elses"):
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)


def test_elasticache_restores_the_newest_snapshot_reads_keys_and_the_heartbeat(
    redis_server: RedisServer, tmp_path: Path, moto_endpoint: str
) -> None:
    """A real Redis stands in for the restored group: its keys are read back and drwatch's
    heartbeat key gives the data lost; the group is deleted; no snapshot fails by name."""
    redis_server.start(save="")
    write_keys(redis_server, 50)
    written = time.time()
    redis_server.client().set("drwatch:heartbeat", f"{written:.3f}")
    ec = _client("elasticache", moto_endpoint)
    ec.create_replication_group(ReplicationGroupId="cache", ReplicationGroupDescription="c",
                                Engine="redis", CacheNodeType="cache.t3.micro",
                                NumCacheClusters=1)  # fmt: skip

    def config(group: str) -> Config:
        target = {"name": "cache", "redis": {"url": redis_server.url, "heartbeat": {},
                                              "elasticache": {"replication_group": group}},
                  "drills": {"timeout": "2m", "elasticache": {
                      "url": f"redis://127.0.0.1:{redis_server.port}/0#{{host}}:{{port}}"}}}  # fmt: skip
        return make_config([target], state_dir=str(tmp_path), drills={"aws": {"poll": "100ms"}},
                           aws={**AWS, "endpoint_url": moto_endpoint}).config  # fmt: skip

    none = elasticache_restore.run(config("cache"), config("cache").targets[0],
                                   time.monotonic() + 60)  # fmt: skip
    assert not none.ok and "no available snapshot of replication group cache" in none.summary
    ec.create_snapshot(SnapshotName="cache-nightly", ReplicationGroupId="cache")
    loaded = config("cache")
    result = elasticache_restore.run(loaded, loaded.targets[0], time.monotonic() + 60)
    assert result.ok, result.summary
    assert result.values["backup"] == "cache-nightly" and result.values["keys_loaded"] == 51
    assert result.values["measured_data_loss_seconds"] == 0.0
    assert {"request", "provision", "available", "verify", "delete"} <= set(result.phases)
    groups = ec.describe_replication_groups()["ReplicationGroups"]
    left = [g["ReplicationGroupId"] for g in groups if g.get("Status") != "deleting"]
    assert left == ["cache"] and result.values["deleted"].startswith("drwatch-drill-cache-")



def test_config_validate_says_what_each_aws_drill_creates_and_costs(tmp_path: Path) -> None:
    from exporter.drills.history import drill_history, record_of
    from exporter.drills.result import DrillResult
    from tests.helpers import drwatch, write_config

    verify = "host={host} port={port} user=drill dbname=app"
    target = {"name": "app", "rds": {"instance": "prod"}, "drills": {
        "rds_pitr": {"verify_dsn": verify, "instance_class": "db.t3.small"}}}  # fmt: skip
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(tmp_path / "state"))
    first = drwatch("config", "validate", str(config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert ("drill rds_pitr (WAL replay test, monthly in the runbook; 0 4 1 * * UTC" in first.stdout)
    assert ("a temporary RDS instance (db.t3.small) restored from prod at a point in time, "
            "deleted after; its cost per run known after its first drill") in first.stdout
    ran = DrillResult("app", "rds_pitr", time.time() - 3600, ok=True, duration_seconds=1500.0,
                      phases={"request": 1.0, "provision": 1500.0, "verify": 300.0,
                              "delete": 0.0})  # fmt: skip
    from core.config.drills import DrillCapacity

    drill_history(str(tmp_path / "state"), DrillCapacity()).append(
        [record_of(ran, 1800.0)]
    )
    again = drwatch("config", "validate", str(config))
    assert "about 0.50 instance-hours a run (the last 1 drill(s))" in again.stdout, again.stdout


def _aurora(endpoint: str, name: str) -> None:
    """An Aurora cluster, encrypted (as Aurora is by default) with a key that is enabled."""
    rds = _client("rds", endpoint)
    key = _client("kms", endpoint).create_key(Description=name)["KeyMetadata"]["Arn"]
    rds.create_db_cluster(DBClusterIdentifier=f"{name}-cluster", Engine="aurora-postgresql",
                          MasterUsername="app", MasterUserPassword="production-secret",
                          StorageEncrypted=True, KmsKeyId=key)  # fmt: skip
    rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=f"{name}-cluster",
                           Engine="aurora-postgresql", DBInstanceClass="db.r4.large")  # fmt: skip


def test_aurora_restores_its_cluster_and_one_instance_and_deletes_both(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    """Aurora: RestoreDBClusterToPointInTime into a temporary cluster, one instance in it,
    checked, then both deleted; a class the region does not offer for aurora-postgresql (moto
    lists its orderable classes) fails by name before anything is made."""
    _aurora(moto_endpoint, "aurora-prod")
    config = _config(estate, tmp_path, moto_endpoint, "aurora-prod")
    result = rds_restore.run_pitr(config, config.targets[0], time.monotonic() + 120)
    assert result.ok, result.summary
    assert result.values["source_cluster"] == "aurora-prod-cluster"
    rds = _client("rds", moto_endpoint)
    clusters = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]]
    assert not [c for c in clusters if c.startswith("drwatch-drill-")], clusters
    assert _drill_instances(moto_endpoint) == []
    bogus = _config(estate, tmp_path / "bogus", moto_endpoint, "aurora-prod",
                    rds_pitr={"verify_dsn": "host={host}", "instance_class": "db.x9.bogus"})  # fmt: skip
    refused = rds_restore.run_pitr(bogus, bogus.targets[0], time.monotonic() + 60)
    assert not refused.ok
    assert refused.summary == "instance class db.x9.bogus is not offered for aurora-postgresql here"
    assert "deleted" not in refused.values


def test_full_restore_onto_a_new_instance_counts_its_creation_and_deletes_it(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str
) -> None:
    """The runbook's Scenario 2 as written: a new RDS instance (a second real PostgreSQL stands
    in for it), the newest dump pg_restore'd into a database of its own there, checked against
    production, the instance deleted; the measured RTO includes the instance's creation."""
    standin = PgCluster().init(None).start()
    try:
        store = estate.backups / "dumps"
        estate.dump("app", store)
        (tmp_path / "scratch").mkdir()
        reachable(tmp_path / "scratch")  # pg_restore runs as the scratch user (drwatch is root)
        target = {
            "name": "app",
            "postgres": {"dsn": estate.dsn("app"), "verification": {
                "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}]}},
            "backups": {"store": f"file://{store}/"},
            "drills": {"timeout": "2m",
                       "scratch": {"dir": str(tmp_path / "scratch"), "user": "postgres"},
                       "full_restore": {"rds": {
                           "create": {"instance_class": "db.t3.micro"},
                           "staging_dsn": f"host=127.0.0.1 port={standin.port} user=postgres "
                                          "dbname=postgres application_name={host}"}}},
        }  # fmt: skip
        config = make_config([target], state_dir=str(tmp_path), drills={"aws": {"poll": "100ms"}},
                             aws={**AWS, "endpoint_url": moto_endpoint}).config  # fmt: skip
        (result,) = DrillEngine().run(config, config.targets[0], "full_restore")
        rows = estate.execute("SELECT count(*) FROM debates", "app")[0][0]
    finally:
        standin.destroy()
    assert result.ok, result.summary
    assert result.tables["debates"] == (rows, 0) and "onto a new RDS instance" in result.summary
    assert {"request", "provision", "available", "download", "restore", "verify"} <= set(
        result.phases)  # fmt: skip
    assert result.duration_seconds >= result.phases["provision"] + result.phases["restore"]
    assert result.values["deleted"].startswith("drwatch-drill-app-")
    assert _drill_instances(moto_endpoint) == []


def test_sigterm_mid_drill_deletes_what_the_drill_made(
    estate: PgCluster, tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """drwatch stops (SIGTERM: the engine's stop) while an instance provisions: it is deleted
    then, not left for the next start's reaper."""
    import threading

    from sandbox.pgcluster import wait_until

    _prod(moto_endpoint, "stop-prod")
    _still_creating(monkeypatch)
    config = _config(estate, tmp_path, moto_endpoint, "stop-prod")
    results: list[Any] = []
    drill = threading.Thread(target=lambda: results.append(
        rds_restore.run_pitr(config, config.targets[0], time.monotonic() + 60)))  # fmt: skip
    drill.start()
    try:
        (made,) = wait_until(lambda: _drill_instances(moto_endpoint), 30, what="an instance")
        tag_list = _client("rds", moto_endpoint).describe_db_instances(
            DBInstanceIdentifier=made)["DBInstances"][0]["TagList"]  # fmt: skip
        assert {t["Key"]: t["Value"] for t in tag_list}["drwatch-target"] == "app"
        assert made.endswith({t["Key"]: t["Value"] for t in tag_list}["drwatch-drill"])
        DrillEngine().stop()
        assert _drill_instances(moto_endpoint) == []
    finally:
        drill.join(90)
    assert results and not results[0].ok
