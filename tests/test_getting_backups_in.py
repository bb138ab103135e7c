"""The README's "Getting your backups in", run as written against real servers: each command is
read from the README itself, its paths pointed at a temporary store, and what it writes is then
read by the check that watches that store."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from checks.base import Status
from sandbox.pgcluster import PgCluster, wait_until
from sandbox.redisserver import RedisServer
from tests.backup_tools import AWS_ENV
from tests.helpers import AWS, CheckHarness, make_config, reachable, s3_client, write_keys

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SECTION = README.split("### Getting your backups in", 1)[1].split("\n## ", 1)[0]


def _archive_commands() -> list[str]:
    return re.findall(r"^\s*archive_command = '(.+)'$", SECTION, re.M)


def _cron(program: str) -> str:
    """The command of the README's crontab line that runs `program` (cron's \\% unescaped)."""
    line = next(
        line.strip()
        for line in SECTION.splitlines()
        if re.match(rf"^\s*[\d*].*\s{program}\s", line)
    )
    command = line.split(None, 6)[6]  # minute hour day month weekday user command
    return command.replace("\\%", "%")


def _stores(root: Path) -> dict[str, Path]:
    return {name: root / name for name in ("wal", "dumps", "redis")}


def _pointed(command: str, root: Path, port: int | None = None) -> str:
    """The command with its paths under `root` and its server's port `port`."""
    pointed = command.replace("/backups/", f"{root}/")
    return pointed.replace("-p 5432", f"-p {port}") if port else pointed


def _as_postgres(command: str, cluster: PgCluster) -> None:
    env = {"PATH": f"{cluster.bin}:/usr/bin:/bin"}
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    subprocess.run([runuser, "-u", "postgres", "--", "sh", "-c", command], env=env,
                   check=True, timeout=120)  # fmt: skip


def _chown_to_postgres(*paths: Path) -> None:
    """Directories the server's OS user writes, reachable through their parents."""
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "postgres", str(path)], check=True)
        reachable(path)


def test_the_file_archive_command_and_the_base_backup_line_make_pitr_possible(
    tmp_path: Path,
) -> None:
    """WAL archived by the README's command, and nothing else: PITR impossible, said, the
    exposure +Inf. Then the README's base backup cron line: the archive and the base store
    read OK, the base backup verified."""
    (file_command,) = [c for c in _archive_commands() if c.startswith("test ! -f")]
    root = tmp_path / "backups"
    _chown_to_postgres(root, root / "wal", root / "base")
    cluster = PgCluster().init(_pointed(file_command, root).replace("{", "{{").replace("}", "}}"))
    cluster.start()
    try:
        cluster.write_wal(3)
        wait_until(cluster.archive_caught_up, 60, what="archived by the README's command")
        target = {"name": "db", "postgres": {"dsn": cluster.dsn()},
                  "backups": {"wal_store": f"file://{root}/wal/"}}  # fmt: skip
        wal_only = CheckHarness(make_config([target], state_dir=str(tmp_path / "s"))).run(
            "wal_archive"
        )
        _as_postgres(_pointed(_cron("pg_basebackup"), root, cluster.port), cluster)
        cluster.write_wal(1)
        wait_until(cluster.archive_caught_up, 60, what="the backup's WAL archived")
        target["backups"]["base_store"] = f"file://{root}/base/"  # type: ignore[index]
        harness = CheckHarness(make_config([target], state_dir=str(tmp_path / "s")))
        archive, base = harness.run("wal_archive"), harness.run("base_backups")
    finally:
        cluster.destroy()
    assert wal_only.status == Status.CRITICAL
    assert "PITR impossible: WAL is archived but no base backup" in wal_only.summary
    assert wal_only.exposures["pitr"] == float("inf")
    assert archive.status == Status.OK, archive.summary
    assert base.status == Status.OK, base.summary
    assert base.values["newest_verified"] is True, base.summary


def test_the_s3_archive_command_fills_a_store_the_wal_archive_check_reads(
    tmp_path: Path, moto_endpoint: str
) -> None:
    (s3_command,) = [c for c in _archive_commands() if c.startswith("barman-cloud-wal-archive")]
    bucket = "backups"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    # As the README says for an S3 other than AWS: --endpoint-url; credentials in the environment.
    command = s3_command.replace(
        "barman-cloud-wal-archive", f"barman-cloud-wal-archive --endpoint-url {moto_endpoint}", 1
    )
    cluster = PgCluster().init(" ".join([*AWS_ENV, command]))
    cluster.start()
    try:
        cluster.write_wal(3)
        wait_until(cluster.archive_caught_up, 60, what="archived to S3 by the README's command")
        # the bucket's base backups are the base store (barman-cloud-backup writes them there)
        target = {"name": "db", "postgres": {"dsn": cluster.dsn()},
                  "backups": {"wal_store": f"s3://{bucket}/pg/",
                              "base_store": f"s3://{bucket}/pg/"}}  # fmt: skip
        config = make_config(
            [target], state_dir=str(tmp_path / "s"), aws={**AWS, "endpoint_url": moto_endpoint}
        )
        result = CheckHarness(config).run("wal_archive")
        assert result.status == Status.OK, result.summary
        assert "barman layout" in result.summary
    finally:
        cluster.destroy()


def test_the_dump_cron_line_writes_what_the_backups_check_expects(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    _chown_to_postgres(root, root / "dumps")
    cluster = PgCluster().init(None).start()
    try:
        cluster.execute("CREATE DATABASE app")
        _as_postgres(_pointed(_cron("pg_dump"), root, cluster.port), cluster)
        target = {"name": "db", "backups": {"store": f"file://{root}/dumps/"}}
        result = CheckHarness(make_config([target], state_dir=str(tmp_path / "s"))).run("backups")
        assert result.status == Status.OK, result.summary
        assert "newest app-20" in result.summary  # the README's name, found by the default pattern
    finally:
        cluster.destroy()


def test_the_redis_cron_line_fills_the_snapshot_store(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.start(save="")
    write_keys(redis_server, 100)
    root = tmp_path / "backups"
    (root / "redis").mkdir(parents=True)
    command = _pointed(_cron("redis-cli"), root).replace(
        "redis-cli", f"redis-cli -p {redis_server.port}", 1
    )
    subprocess.run(["sh", "-c", command], check=True, timeout=60,
                   env={**os.environ, "PATH": "/usr/bin:/bin"})  # fmt: skip
    target = {"name": "cache", "redis": {"url": redis_server.url,
              "snapshot_store": f"file://{root}/redis/"}}  # fmt: skip
    result = CheckHarness(make_config([target], state_dir=str(tmp_path / "s"))).run(
        "redis_snapshots"
    )
    assert result.status == Status.OK, result.summary
    assert "cache-" in result.summary


@pytest.mark.parametrize("program", ["pg_dump", "redis-cli", "pg_basebackup"])
def test_the_cron_lines_name_files_the_default_patterns_sort_newest_last(program: str) -> None:
    assert "$(date -u +%Y%m%dT%H%M%SZ)" in _cron(program)
