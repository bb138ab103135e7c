"""ElastiCache snapshots: moto's standalone server, and an endpoint for what moto leaves out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import boto3
import pytest

from checks.base import Status
from tests.helpers import AWS, CheckHarness, make_config, sample, serve

SNAPSHOT_AGE = 2 * 3600


def _harness(endpoint: str, tmp_path: Path, **elasticache: object) -> CheckHarness:
    return CheckHarness(
        make_config(
            [
                {
                    "name": "cache",
                    "redis": {"url": "redis://127.0.0.1:1/0", "elasticache": elasticache},
                }
            ],
            aws={**AWS, "endpoint_url": endpoint},
            state_dir=str(tmp_path),
        )
    )


def test_snapshots_counted_through_moto(moto_endpoint: str, tmp_path: Path) -> None:
    cluster = f"aragora-{uuid.uuid4().hex[:6]}"
    client = boto3.client(
        "elasticache", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing-secret",
    )  # fmt: skip
    client.create_cache_cluster(
        CacheClusterId=cluster, Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    harness = _harness(moto_endpoint, tmp_path, cluster=cluster)
    none = harness.run("elasticache")
    assert none.up and sample(none, "drwatch_elasticache_snapshots") == 0
    assert none.status == Status.CRITICAL and "no available snapshot" in none.summary
    client.create_snapshot(SnapshotName=f"{cluster}-1", CacheClusterId=cluster)
    one = harness.run("elasticache")
    assert sample(one, "drwatch_elasticache_snapshots") == 1
    # moto does not model NodeSnapshots, where AWS puts the snapshot's creation time.
    assert one.status == Status.UNKNOWN and "none with a creation time" in one.summary


class _DescribeSnapshots(BaseHTTPRequestHandler):
    """Answers DescribeSnapshots as AWS does, NodeSnapshots included (moto leaves them out)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - SNAPSHOT_AGE))
        body = f"""<DescribeSnapshotsResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
<DescribeSnapshotsResult><Snapshots><Snapshot>
<SnapshotName>automatic.aragora-redis</SnapshotName><SnapshotStatus>available</SnapshotStatus>
<ReplicationGroupId>aragora-redis</ReplicationGroupId>
<NodeSnapshots><NodeSnapshot><CacheNodeId>0001</CacheNodeId>
<SnapshotCreateTime>{created}</SnapshotCreateTime></NodeSnapshot></NodeSnapshots>
</Snapshot></Snapshots></DescribeSnapshotsResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeSnapshotsResponse>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def aws_like_endpoint() -> Iterator[str]:
    with serve(_DescribeSnapshots) as url:
        yield url


def test_newest_snapshot_age(aws_like_endpoint: str, tmp_path: Path) -> None:
    fresh = _harness(aws_like_endpoint, tmp_path, replication_group="aragora-redis").run(
        "elasticache"
    )
    assert fresh.up, fresh.summary
    newest = sample(fresh, "drwatch_elasticache_newest_snapshot_timestamp_seconds")
    assert newest == pytest.approx(time.time() - SNAPSHOT_AGE, abs=5)
    assert fresh.status == Status.OK
    stale = _harness(
        aws_like_endpoint, tmp_path, replication_group="aragora-redis", max_age="1h"
    ).run("elasticache")
    assert stale.status == Status.CRITICAL and "over the 1h allowed" in stale.summary
