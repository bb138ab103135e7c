"""Integrity verification: one at a time, whatever the number of targets."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.support.stores import FileStore
from checks.support.verify import DumpTooNew, VerificationBusy, verify_dump, verify_rdb
from sandbox.redisserver import RedisServer
from tests.helpers import redis_harness, sample


def test_one_verification_at_a_time(dumps: dict[str, bytes]) -> None:
    slow = _SlowStore(dumps["good"])
    first: list[object] = []
    worker = threading.Thread(
        target=lambda: first.append(verify_dump(slow, "a.dump", "full", time.monotonic() + 30, 1 << 40))
    )
    worker.start()
    assert slow.reading.wait(10)
    with pytest.raises(VerificationBusy):
        verify_dump(FileStore("file:///", Path("/")), "b.dump", "full", time.monotonic() + 0.5, 1 << 40)
    slow.release.set()
    worker.join(30)
    assert first and first[0].ok  # type: ignore[attr-defined]


class _SlowStore:
    """A store whose dump arrives only when the test says so."""

    url = "slow://"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.release = threading.Event()
        self.reading = threading.Event()

    def list(self):  # type: ignore[no-untyped-def]
        return iter(())

    def head(self, key: str) -> None:
        return None

    def chunks(self, key: str):  # type: ignore[no-untyped-def]
        self.reading.set()
        self.release.wait(30)
        yield self.data


@pytest.fixture
def small_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 64 kB temporary directory (a tmpfs of its own), as TMPDIR."""
    where = tmp_path / "tmp"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)])
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def _fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # no space left: full, as meant
        pass
    finally:
        os.close(fd)


def test_a_dump_is_verified_without_temporary_space(
    dumps: dict[str, bytes], small_tmp: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.dump").write_bytes(dumps["good"])
    store = FileStore(f"file://{tmp_path}/", tmp_path)
    expected = verify_dump(store, "a.dump", "full", time.monotonic() + 60, 1 << 40)
    _fill(small_tmp)
    verdict = verify_dump(store, "a.dump", "full", time.monotonic() + 60, 1 << 40)
    assert verdict.ok and verdict.toc_entries == expected.toc_entries and expected.toc_entries


def test_a_snapshot_that_does_not_fit_in_temp_is_no_space_never_a_verdict(
    redis_server: RedisServer, small_tmp: Path, tmp_path: Path
) -> None:
    redis_server.start(save="3600 1")
    client = redis_server.client()
    for i in range(200):
        client.set(f"k{i}", os.urandom(1024).hex())  # 400 kB, incompressible
    client.save()
    store = tmp_path / "snapshots"
    store.mkdir()
    (store / "s.rdb").write_bytes((redis_server.dir / "dump.rdb").read_bytes())
    harness = redis_harness(redis_server.url, tmp_path / "state", snapshot_store=f"file://{store}/")
    full = harness.run("redis_snapshots")
    assert f"no space left in {small_tmp} to verify s.rdb" in full.summary
    assert sample(full, "drwatch_redis_snapshot_newest_verified") is None
    assert not list(small_tmp.iterdir()), "the partial copy was left behind"
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_tmp)], check=True)
    verified = harness.run("redis_snapshots")  # the full disk was not remembered as a verdict
    assert sample(verified, "drwatch_redis_snapshot_newest_verified") == 1, verified.summary


def test_a_snapshot_copy_is_never_visible_in_temp(tmp_path: Path) -> None:
    slow = _SlowStore(b"REDIS0011 not really a snapshot")
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(verify_rdb(slow, "s.rdb", time.monotonic() + 30))
    )
    before = set(Path(tempfile.gettempdir()).iterdir())
    worker.start()
    assert slow.reading.wait(10)
    # Killed now, drwatch would leave nothing: the copy has no name.
    assert set(Path(tempfile.gettempdir()).iterdir()) == before
    slow.release.set()
    worker.join(30)
    assert outcome and not outcome[0].ok  # type: ignore[attr-defined]


def test_a_dump_newer_than_pg_restore_is_no_verdict_and_says_so(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    newer = bytearray(dumps["good"])
    assert newer[:5] == b"PGDMP"
    newer[6] = 99  # the archive format's minor version: 1.99, which no pg_restore reads yet
    (tmp_path / "new.dump").write_bytes(bytes(newer))
    store = FileStore(f"file://{tmp_path}/", tmp_path)
    with pytest.raises(DumpTooNew) as raised:
        verify_dump(store, "new.dump", "full", time.monotonic() + 60, 1 << 40)
    message = str(raised.value)
    assert message.startswith(
        "new.dump was written by a newer pg_dump than pg_restore (PostgreSQL)"
    )
    assert "(unsupported version (1.99) in file header)" in message
