"""Decompression bombs in a backup store: a few hundred kB that stand for gigabytes. The file
fails by name, the daemon keeps serving, and its memory stays bounded."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard

from sandbox.pgcluster import wait_until
from tests.daemon import DaemonProcess
from tests.helpers import file_store, write_config

STANDS_FOR = 4 << 30  # zeros: more than the address space the daemon is given
ADDRESS_SPACE = 2 << 30  # prlimit --as: a bomb inflated whole would be refused memory


def _bomb(codec: str) -> bytes:
    """STANDS_FOR zeros: one compressed member of 64 MiB repeated (gzip members, zstd and lz4
    frames follow one another in a file, as parallel compressors write them)."""
    zeros = bytes(64 << 20)
    member = {
        "zst": zstandard.ZstdCompressor(level=1).compress,
        "gz": lambda data: gzip.compress(data, compresslevel=1),
        "lz4": lz4.frame.compress,
    }[codec](zeros)
    return member * (STANDS_FOR // len(zeros))


def _peak_rss(pid: int) -> int:
    """The process's high-water resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("codec", ["zst", "gz", "lz4"])
def test_a_bomb_in_the_store_fails_by_name_while_the_daemon_serves(
    tmp_path: Path, codec: str
) -> None:
    bomb = _bomb(codec)
    name = f"app-1.sql.{codec}"
    root = file_store(tmp_path, {name: (bomb, time.time() - 600)})
    config = write_config(tmp_path / "c.yml", [{
        "name": "app", "backups": {"store": f"file://{root}/", "patterns": ["*.sql.*"]},
    }], state_dir=str(tmp_path / "state"))  # fmt: skip
    daemon = DaemonProcess(
        config, tmp_path, wrapper=("prlimit", f"--as={ADDRESS_SPACE}", "--")
    )  # fmt: skip
    try:
        wait_until(
            lambda: daemon.value("drwatch_backup_newest_verified", target="app") is not None,
            90, what="the bomb read",
        )  # fmt: skip
        assert daemon.value("drwatch_backup_newest_verified", target="app") == 0
        assert daemon.value("drwatch_check_up", check="backups", target="app") == 1
        status, page = daemon.get("/status.json")
        assert status == 200
        cap = max(1 << 30, 100 * len(bomb))  # backups.max_inflation times its size, >= 1 GiB
        assert name in page and f"decompresses to more than {cap} bytes" in page
        assert "backups.max_uncompressed" in page
        assert daemon.get("/-/healthy")[0] == 200
        assert _peak_rss(daemon.proc.pid) < 400 << 20
    finally:
        assert daemon.stop() == 0, daemon.log()[-2000:]
