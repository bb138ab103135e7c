"""A failing S3 endpoint costs the backup checks only, with a reason, and they recover."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from checks.base import Status
from checks.support.stores import nested_prefix
from sandbox.pgcluster import free_port
from tests.helpers import AWS, CheckHarness, make_config, s3_client, serve

SECRET = "wr0ng-s3cret-key-value"


class _Answer(BaseHTTPRequestHandler):
    status = 500
    code = "InternalError"

    def _reply(self) -> None:
        body = f"<Error><Code>{self.code}</Code><Message>no</Message></Error>".encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = _reply

    def log_message(self, *args: object) -> None:
        pass


def _serve(status: int, code: str) -> Iterator[str]:
    handler = type("Handler", (_Answer,), {"status": status, "code": code})
    with serve(handler) as url:
        yield url


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    yield from _serve(500, "InternalError")


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    yield from _serve(403, "InvalidAccessKeyId")


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel does) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def _run(endpoint: str, tmp_path: Path, **aws: object):  # type: ignore[no-untyped-def]
    config = make_config(
        [{"name": "db", "backups": {"store": "s3://backups/postgres/", "verify": "none"}}],
        aws={
            **AWS,
            "endpoint_url": endpoint,
            "max_attempts": 2,
            "connect_timeout": "1s",
            "read_timeout": "1s",
            **aws,
        },
        state_dir=str(tmp_path),
    )
    return CheckHarness(config).run("backups")


def test_http_500s(failing_endpoint: str, tmp_path: Path) -> None:
    result = _run(failing_endpoint, tmp_path)
    assert not result.up and result.error_reasons == ("query",)
    assert result.summary == "store s3://backups/postgres/: list: InternalError (HTTP 500)"
    assert result.exposures == {"full_restore": None}


def test_wrong_credentials_name_the_store_and_never_the_secret(
    refusing_endpoint: str, tmp_path: Path
) -> None:
    result = _run(refusing_endpoint, tmp_path, secret_access_key=SECRET)
    assert not result.up and result.error_reasons == ("permission",)
    assert (
        result.summary == "store s3://backups/postgres/: list: access denied (InvalidAccessKeyId)"
    )
    assert result.status == Status.UNKNOWN
    assert SECRET not in result.summary


def test_slow_endpoint_times_out(silent_endpoint: str, tmp_path: Path) -> None:
    result = _run(silent_endpoint, tmp_path)
    assert not result.up and result.error_reasons == ("timeout",)
    assert "timed out" in result.summary


def test_endpoint_down_then_back(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    config = make_config(
        [{"name": "db", "backups": {"store": "s3://backups/postgres/", "verify": "none"}}],
        aws={**AWS, "endpoint_url": endpoint, "max_attempts": 1, "connect_timeout": "1s"},
        state_dir=str(tmp_path),
    )
    harness = CheckHarness(config)
    down = harness.run("backups")
    assert not down.up and down.error_reasons == ("connect",)
    assert down.summary == "store s3://backups/postgres/: list: cannot reach the endpoint"
    assert down.status == Status.CRITICAL
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="backups")
        s3.put_object(Bucket="backups", Key="postgres/app.dump", Body=b"x")
        back = harness.run("backups")
        assert back.up and back.values["backups"] == 1, back.summary
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("outer", "inner", "prefix"),
    [
        ("file:///b/", "file:///b/replica/", "replica/"),
        ("file:///b", "file:///b/x/y", "x/y/"),
        ("file:///b/", "file:///bb/", None),
        ("file:///b/", "file:///b/", None),
        ("s3://bucket/pg/", "s3://bucket/pg/wal/", "wal/"),
        ("s3://bucket/", "s3://bucket/wal/", "wal/"),
        ("s3://bucket/pg/", "s3://other/pg/wal/", None),
        ("s3://bucket/pg/", None, None),
    ],
)
def test_nested_prefix(outer: str, inner: str | None, prefix: str | None) -> None:
    assert nested_prefix(outer, inner) == prefix
