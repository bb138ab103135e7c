"""The cross_region drill (the runbook's Full DR drill): the newest verified dump's copy in the
cross-region store, downloaded with that store's own access, restored and checked."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from core.config.loading import LoadedConfig
from exporter.drills import cross_region
from exporter.drills.result import DrillResult
from sandbox.pgcluster import PgCluster
from tests.helpers import AWS, CheckHarness, make_config, reachable, s3_client


def _loaded(
    production: PgCluster, dumps: Path, state: Path, moto: str, bucket: str
) -> LoadedConfig:
    scratch = state / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    reachable(scratch)
    target: dict[str, Any] = {
        "name": "app",
        "postgres": {
            "dsn": production.dsn("app"),
            "verification": {
                "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}]
            },
        },
        "backups": {
            "store": f"file://{dumps}/",
            "replica_store": f"s3://{bucket}/dumps/",
            # The other region's endpoint and credentials: `aws:` below reaches nothing.
            "replica_aws": {**AWS, "endpoint_url": moto, "max_attempts": 1},
        },
        "drills": {"scratch": {"user": "postgres", "dir": str(scratch)}, "cross_region": {}},
    }
    return make_config(
        [target],
        state_dir=str(state),
        aws={**AWS, "endpoint_url": "http://127.0.0.1:1", "max_attempts": 1,
             "connect_timeout": "1s"},
    )  # fmt: skip


def _drill(loaded: LoadedConfig) -> DrillResult:
    config = loaded.config
    return cross_region.run(config, config.targets[0], time.monotonic() + 120)


@pytest.fixture
def estate(production: PgCluster, tmp_path: Path, moto_endpoint: str):  # type: ignore[no-untyped-def]
    """A real dump in the primary store, verified by the backups check; an empty replica."""
    dumps = production.backups / tmp_path.name  # pg_dump runs as the server's OS user
    dump = production.dump("app", dumps)
    bucket = f"dr-{tmp_path.name.lower().replace('_', '-')[:40]}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    loaded = _loaded(production, dumps, tmp_path / "state", moto_endpoint, bucket)
    assert CheckHarness(loaded).run("backups").status.name == "OK"  # the verdict is written
    return loaded, dump, bucket


def test_the_copy_in_the_other_region_restores_with_every_row(
    estate, production: PgCluster, moto_endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    loaded, dump, bucket = estate
    s3_client(moto_endpoint).put_object(Bucket=bucket, Key=f"dumps/{dump.name}",
                                        Body=dump.read_bytes())  # fmt: skip
    result = _drill(loaded)
    assert result.ok, result.summary
    assert f"from s3://{bucket}/dumps/" in result.summary
    assert result.values["backup_sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert result.values["backup_etag"]  # S3's, for the evidence
    rows, missing = result.tables["debates"]
    assert missing == 0 and rows == production.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert result.phase_bytes["download"] == dump.stat().st_size


def test_no_copy_fails_the_drill_naming_the_store_and_the_object(estate) -> None:  # type: ignore[no-untyped-def]
    loaded, dump, bucket = estate
    result = _drill(loaded)
    assert not result.ok
    assert result.summary == f"{dump.name} is not in s3://{bucket}/dumps/: nothing to restore there"


def test_a_copy_that_differs_fails_the_drill(estate, moto_endpoint: str) -> None:  # type: ignore[no-untyped-def]
    loaded, dump, bucket = estate
    body = dump.read_bytes()
    s3_client(moto_endpoint).put_object(Bucket=bucket, Key=f"dumps/{dump.name}", Body=body[:-10])
    result = _drill(loaded)
    assert not result.ok
    assert result.summary.startswith(f"{dump.name} in s3://{bucket}/dumps/ differs from ")
    assert f"{len(body) - 10} bytes" in result.summary


def test_a_same_size_copy_with_other_bytes_is_never_restored(estate, moto_endpoint: str) -> None:  # type: ignore[no-untyped-def]
    """The primary store (file://) has no ETag to compare: a replica object of the same size
    that is not the dump fails by its content's SHA-256, before anything is restored."""
    loaded, dump, bucket = estate
    body = bytearray(dump.read_bytes())
    body[len(body) // 2] ^= 0xFF
    s3_client(moto_endpoint).put_object(Bucket=bucket, Key=f"dumps/{dump.name}", Body=bytes(body))
    result = _drill(loaded)
    assert not result.ok
    assert result.summary.startswith(f"{dump.name} in s3://{bucket}/dumps/ differs from ")
    assert result.summary.endswith("compared by SHA-256 of the content)")
    assert "restore" not in result.phases
