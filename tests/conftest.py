from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config.loading import LoadedConfig, parse_config
from sandbox.pgcluster import ARCHIVE_COPY, PgCluster, free_port


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A fresh primary archiving into its own directory."""
    c = PgCluster().init(ARCHIVE_COPY).start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[PgCluster]:
    """One cluster for tests that only read or own their tables."""
    c = PgCluster().init(None).start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone S3/RDS server over HTTP on a free loopback port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


AWS = {"region": "us-east-1", "access_key_id": "testing", "secret_access_key": "testing-secret"}


def s3_client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
    )


def make_config(targets: list[dict[str, Any]], **top: Any) -> LoadedConfig:
    return parse_config(yaml.safe_dump({"targets": targets, **top}), env={})


def write_config(path: Path, targets: list[dict[str, Any]], **top: Any) -> Path:
    path.write_text(yaml.safe_dump({"targets": targets, **top}))
    return path
