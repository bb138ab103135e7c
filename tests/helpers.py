"""Shared by the tests: run checks the way the daemon does, wait with deadlines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.base import Observation
from core.config.loading import LoadedConfig, parse_config
from core.errors import ConfigError
from exporter.runtime.jobs import build_jobs
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import DeadlineRunner, Job
from sandbox.pgcluster import PgCluster
from sandbox.redisserver import RedisServer


class CheckHarness:
    """Jobs built once (so checks keep their state across runs), run through the real runner."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.jobs, _ = build_jobs(loaded.config)
        self.runner = DeadlineRunner()

    def job(self, check: str, target: str | None = None) -> Job:
        for job in self.jobs:
            if job.check == check and (target is None or job.target == target):
                return job
        raise KeyError(check)

    def run(self, check: str, target: str | None = None) -> CheckResult:
        return self.runner.run(self.job(check, target))


def drwatch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The `drwatch` command as users run it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A loopback HTTP server for `handler`, yielding its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sample(result: CheckResult | Observation, name: str, /, **labels: str) -> float | None:
    want = tuple(sorted(labels.items()))
    for s in result.samples:
        if s.name == name and (not labels or s.labels == want):
            return s.value
    return None


def redis_harness(url: str, state_dir: Path, rpo: str = "2s", **redis: object) -> CheckHarness:
    """The Redis checks of one target on `url`, with a redis objective of `rpo`."""
    return CheckHarness(
        make_config(
            [
                {
                    "name": "cache",
                    "objectives": {"redis": {"rpo": rpo}},
                    "redis": {"url": url, **redis},
                }
            ],
            state_dir=str(state_dir),
        )
    )


def write_keys(server: RedisServer, n: int = 10) -> None:
    client = server.client()
    for i in range(n):
        client.set(f"key{i}", time.time())


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


DSN = "postgresql://drwatch@127.0.0.1:5999/app"


def config_problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.problems


def run_verification(db: PgCluster, **verification: object):  # type: ignore[no-untyped-def]
    pg = {"dsn": db.dsn("verify"), "verification": verification}
    return CheckHarness(make_config([{"name": "app", "postgres": pg}])).run("verification")


def file_store(tmp_path: Path, files: dict[str, tuple[bytes, float]]) -> Path:
    """A file:// store holding `files` (key -> (content, mtime)); its root."""
    root = tmp_path / "store"
    for key, (data, mtime) in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    return root


def aws_services(endpoint: str, name: str) -> None:
    """An RDS instance (Multi-AZ, 30 days of backups) and an ElastiCache cluster named `name`
    on moto's server."""
    import boto3

    credentials = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing-secret",
    }
    boto3.client("rds", **credentials).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.r5.large",
        Engine="postgres",
        AllocatedStorage=10,
        MultiAZ=True,
        BackupRetentionPeriod=30,
        MasterUsername="postgres",
        MasterUserPassword="not-a-real-password",
    )
    boto3.client("elasticache", **credentials).create_cache_cluster(
        CacheClusterId=name, Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )


def every_section(
    name: str,
    dsn: str,
    backups: Path,
    archive: Path,
    redis_url: str,
    snapshots: Path,
    aws_name: str,
    base: Path,
    **postgres: Any,
) -> dict[str, Any]:
    """A target with every section and every check of the registry configured: PostgreSQL with
    a verification item, dumps in `backups` (also the replica store), the WAL archive, physical
    base backups in `base`, RDS, Redis with its snapshot store, and ElastiCache (`aws_name`: see
    aws_services)."""
    return {
        "name": name,
        "postgres": {
            "dsn": dsn,
            "verification": {
                "custom": [{"name": "one", "help": "One.", "sql": "SELECT 1 AS value"}]
            },
            **postgres,
        },
        "backups": {
            "store": f"file://{backups}/",
            "wal_store": f"file://{archive}/",
            "replica_store": f"file://{backups}/",
            "base_store": f"file://{base}/",
            "interval": "3s",
        },
        "rds": {"instance": aws_name},
        "redis": {
            "url": redis_url,
            "snapshot_store": f"file://{snapshots}/",
            "elasticache": {"cluster": aws_name},
        },
    }


def single_object_s3(
    key: str, data: bytes, pace: float = 0.0, stall: threading.Event | None = None
) -> type[BaseHTTPRequestHandler]:
    """An S3 endpoint (path-style, any bucket) that lists one object and serves it: 8 kB at a
    time, `pace` seconds apart; with `stall`, only its first half, then nothing until set."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if "list-type=2" in self.path:
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
                    "<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents>"
                    f"<Key>{key}</Key><LastModified>2026-11-26T00:00:00.000Z</LastModified>"
                    f'<ETag>"x"</ETag><Size>{len(data)}</Size></Contents></ListBucketResult>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            served = data[: len(data) // 2] if stall else data
            for start in range(0, len(served), 8192):
                self.wfile.write(served[start : start + 8192])
                self.wfile.flush()
                if pace:
                    time.sleep(pace)  # the pace of a slow store, not a synchronisation
            if stall is not None:
                stall.wait(600)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def reachable(path: Path) -> None:
    """`path` and its parents up to /tmp traversable by other OS users: a drill's scratch user,
    a server's archive_command (pytest makes its directories 0700)."""
    for each in (path, *path.parents):
        if each == Path("/tmp"):
            break
        each.chmod(each.stat().st_mode | 0o011)


def scratch_postmaster(scratch: Path) -> int | None:
    """The host's pid of a drill's scratch server running under `scratch` (a server in a
    sandbox names its pid in its own namespace in postmaster.pid): the postgres process working
    in a data directory there, once it wrote its postmaster.pid."""
    for data in scratch.glob("drwatch-drill-*/data"):
        try:  # negative while initdb's single-user backend holds it: not the server yet
            if int((data / "postmaster.pid").read_text().split()[0]) <= 0:
                continue
        except (OSError, ValueError, IndexError):
            continue
        for entry in Path("/proc").iterdir():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
                if entry.name.isdigit() and os.readlink(entry / "cwd") == str(data) and (
                    args[0].endswith(b"postgres") and not {b"--boot", b"--single"} & set(args)
                ):
                    return int(entry.name)
            except OSError:
                continue
    return None


def running(pid: int) -> bool:
    """Whether `pid` runs: there, and not a zombie left for an init to reap (this machine's init
    may take its time; a process that exited has stopped, reaped or not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    state: str  # R, S, Z (a zombie: ended, not yet reaped)...


def descendants(pid: int) -> list[Proc]:
    """The processes under `pid` at any depth, read from /proc (checks run in workers)."""
    parents: dict[int, int] = {}
    procs: dict[int, Proc] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        child = int(stat.parent.name)
        fields = text.rsplit(")", 1)[1].split()
        procs[child] = Proc(child, text[text.index("(") + 1 : text.rindex(")")], fields[0])
        parents[child] = int(fields[1])
    found = []
    for child, proc in procs.items():
        ancestor = parents.get(child)
        while ancestor and ancestor != pid:
            ancestor = parents.get(ancestor)
        if ancestor == pid:
            found.append(proc)
    return found
