"""Backups being written now: a dump under a temporary name or growing in place (pg_dump's own
bytes, written the way `pg_dump -f` writes them), and a real pgBackRest backup paused mid-way.
Running, with what it wrote so far: never "the newest backup is old", never a failed backup."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.base import Status
from sandbox.pgcluster import PgCluster, wait_until
from sandbox.seed import seed
from tests.backup_tools import PgBackRest
from tests.helpers import CheckHarness, make_config, sample


@pytest.fixture(scope="module")
def dump_bytes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bytes]:
    """A real custom-format dump of a seeded database."""
    cluster = PgCluster().init(None).start()
    try:
        cluster.execute("CREATE DATABASE app")
        with cluster.connect("app") as conn:
            seed(conn, debates=1500)
        out = cluster.dump("app", cluster.backups / "once")
        yield out.read_bytes()
    finally:
        cluster.destroy()


def _harness(store: Path, tmp_path: Path) -> CheckHarness:
    return CheckHarness(make_config(
        [{"name": "db", "backups": {"store": f"file://{store}/", "max_duration": "2h"}}],
        state_dir=str(tmp_path / "state"),
    ))  # fmt: skip


def _older_good(store: Path, data: bytes) -> None:
    old = store / "app-1.dump"
    old.write_bytes(data)
    os.utime(old, (time.time() - 1800, time.time() - 1800))


def test_a_dump_under_a_temporary_name_is_running_until_renamed(
    dump_bytes: bytes, tmp_path: Path
) -> None:
    store = tmp_path / "dumps"
    store.mkdir()
    _older_good(store, dump_bytes)
    (store / "app-2.dump.tmp").write_bytes(dump_bytes[: len(dump_bytes) // 3])
    harness = _harness(store, tmp_path)
    writing = harness.run("backups")
    assert writing.status == Status.OK, writing.summary
    assert sample(writing, "drwatch_backups") == 1  # the temporary file is not a backup yet
    assert sample(writing, "drwatch_backups_running") == 1
    assert sample(writing, "drwatch_backup_running_bytes") == len(dump_bytes) // 3
    assert sample(writing, "drwatch_backup_max_duration_seconds") == 7200
    assert "being written: app-2.dump.tmp" in writing.summary
    (store / "app-2.dump.tmp").write_bytes(dump_bytes)
    os.rename(store / "app-2.dump.tmp", store / "app-2.dump")  # as the backup job finishes
    done = harness.run("backups")
    assert sample(done, "drwatch_backups_running") == 0
    assert sample(done, "drwatch_backup_running_since_timestamp_seconds") is None
    assert sample(done, "drwatch_backup_newest_verified") == 1, done.summary


def test_a_dump_growing_in_place_is_running_not_failed(dump_bytes: bytes, tmp_path: Path) -> None:
    """`pg_dump -f app-2.dump`: its first half is there when drwatch looks. Not a failed backup
    (it would read as truncated): running at the first look and while it grows, a verified
    backup once it has stopped moving."""
    store = tmp_path / "dumps"
    store.mkdir()
    _older_good(store, dump_bytes)
    growing = store / "app-2.dump"
    half = len(dump_bytes) // 2
    growing.write_bytes(dump_bytes[:half])
    harness = _harness(store, tmp_path)
    first = harness.run("backups")
    assert first.status == Status.OK, first.summary  # the older good dump is 30 min old
    assert sample(first, "drwatch_backups_running") == 1
    assert sample(first, "drwatch_backup_verifications_total", result="failed") == 0
    assert "failed verification" not in first.summary
    since = sample(first, "drwatch_backup_running_since_timestamp_seconds")
    with open(growing, "ab") as sink:
        sink.write(dump_bytes[half:])
    second = harness.run("backups")
    assert sample(second, "drwatch_backups_running") == 1  # it moved since the last look
    assert sample(second, "drwatch_backup_running_since_timestamp_seconds") == since
    assert sample(second, "drwatch_backup_running_bytes") == len(dump_bytes)
    settled = harness.run("backups")  # unchanged since: finished
    assert sample(settled, "drwatch_backups_running") == 0
    assert sample(settled, "drwatch_backups") == 2
    assert sample(settled, "drwatch_backup_newest_verified") == 1, settled.summary


def test_a_broken_dump_that_stopped_moving_fails_at_the_next_look(
    dump_bytes: bytes, tmp_path: Path
) -> None:
    store = tmp_path / "dumps"
    store.mkdir()
    _older_good(store, dump_bytes)
    (store / "app-2.dump").write_bytes(dump_bytes[: len(dump_bytes) // 2])  # never finished
    harness = _harness(store, tmp_path)
    assert sample(harness.run("backups"), "drwatch_backups_running") == 1
    again = harness.run("backups")
    assert sample(again, "drwatch_backups_running") == 0
    assert sample(again, "drwatch_backup_newest_verified") == 0
    assert "newest backup app-2.dump failed verification" in again.summary


def test_a_pgbackrest_backup_paused_midway_is_running(tmp_path: Path) -> None:
    """A real `pgbackrest backup`, its WAL archiving held (archive_command fails) so the backup
    cannot finish, then SIGSTOPped once it has saved its backup.manifest.copy: the label
    directory without an entry in backup.info is running, with its bytes."""
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    cluster.init(tool.archive_command).start()
    backup = None
    try:
        tool.run("stanza-create")
        # pgBackRest checks the segment before its start is archived, then copies, then waits
        # for its stop segment: archiving is held for the segments after today's current one,
        # so the backup copies everything and cannot finish.
        current = cluster.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
        hold = cluster.root / "hold-wal"
        hold.touch()
        script = cluster.root / "pgbackrest-held-archive.sh"
        script.write_text(
            "#!/bin/sh\n"
            f'while [ -e {hold} ] && [ "$1" \\> "{current}" ]; do sleep 0.2; done\n'
            f"exec {tool.archive_command.replace('%p', chr(34) + '$2' + chr(34))}\n"
        )
        script.chmod(0o755)
        cluster.execute(f"ALTER SYSTEM SET archive_command = '{script} %f %p'")
        cluster.execute("SELECT pg_reload_conf()")
        backup = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={tool.conf}",
             "--stanza=main", "backup", "--type=full", "--archive-timeout=120"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        labels = tool.repo / "backup" / "main"
        wait_until(
            lambda: any(labels.glob("*F/backup.manifest.copy")), 120, interval=0.1,
            what="pgBackRest to start its backup",
        )  # fmt: skip
        os.killpg(backup.pid, signal.SIGSTOP)
        target = {"name": "db", "backups": {"base_store": f"file://{labels}/"}}
        result = CheckHarness(make_config([target], state_dir=str(tmp_path))).run("base_backups")
        assert sample(result, "drwatch_base_backups_incomplete", state="in_progress") == 1
        assert sample(result, "drwatch_base_backup_running_bytes") > 0
        assert sample(result, "drwatch_base_backups_failed") == 0
        label = next(labels.glob("*F")).name
        assert f"{label} running since" in result.summary, result.summary
    finally:
        if backup is not None:
            os.killpg(backup.pid, signal.SIGKILL)
            backup.wait(30)
        (cluster.root / "hold-wal").unlink(missing_ok=True)
        cluster.destroy()
