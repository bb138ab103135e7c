"""Cross-region copies: exposure from the newest verified backup the replica holds intact."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from checks.base import Status
from tests.helpers import CheckHarness, file_store, make_config, sample

HOUR = 3600.0


def test_replica_missing_the_newest_backup(dumps: dict[str, bytes], tmp_path: Path) -> None:
    now = time.time()
    primary = file_store(
        tmp_path / "primary",
        {"app-1.dump": (dumps["good"], now - 3 * HOUR), "app-2.dump": (dumps["good"], now - 600)},
    )
    replica_files = {"app-1.dump": (dumps["good"], now - 3 * HOUR + 60)}
    replica = file_store(tmp_path / "replica", replica_files)
    harness = CheckHarness(
        make_config(
            [
                {
                    "name": "db",
                    "backups": {
                        "store": f"file://{primary}/",
                        "replica_store": f"file://{replica}/",
                    },
                }
            ],
            state_dir=str(tmp_path / "state"),
        )
    )
    assert harness.run("backups").values["newest_verified"] is True
    harness.run("backups")  # the next run verifies the older backup too
    behind = harness.run("replica_copy")
    assert behind.up, behind.summary
    assert behind.exposures["cross_region"] == pytest.approx(3 * HOUR, abs=30)
    assert sample(behind, "drwatch_replica_newest_verified_present") == 0
    assert sample(behind, "drwatch_replica_copy_lag_seconds") == pytest.approx(
        3 * HOUR - 600, abs=1
    )
    assert behind.status == Status.CRITICAL  # 3 h > the 1 h cross_region objective
    assert "newest verified backup app-2.dump missing" in behind.summary

    (replica / "app-2.dump").write_bytes(dumps["good"][:1000])  # a copy cut short
    partial = harness.run("replica_copy")
    assert partial.exposures["cross_region"] == pytest.approx(3 * HOUR, abs=30)
    assert f"differs (1000 vs {len(dumps['good'])} bytes)" in partial.summary

    (replica / "app-2.dump").write_bytes(dumps["good"])
    caught_up = harness.run("replica_copy")
    assert caught_up.exposures["cross_region"] == pytest.approx(600, abs=30)
    assert sample(caught_up, "drwatch_replica_newest_verified_present") == 1
    assert sample(caught_up, "drwatch_replica_copy_lag_seconds") == 0
    assert caught_up.status == Status.OK, caught_up.summary


def test_before_any_verdict_the_copies_are_judged_without_a_flip(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    """Right after a start the backups check has read nothing yet: the replica check says the
    copy is there (OK, exposure not yet proven), not a WARNING that turns OK a minute later."""
    now = time.time()
    primary = file_store(tmp_path / "primary", {"app-1.dump": (dumps["good"], now - 600)})
    replica = file_store(tmp_path / "replica", {"app-1.dump": (dumps["good"], now - 500)})
    target = {"name": "db", "backups": {"store": f"file://{primary}/",
                                        "replica_store": f"file://{replica}/"}}  # fmt: skip
    harness = CheckHarness(make_config([target], state_dir=str(tmp_path / "state")))
    first = harness.run("replica_copy")
    assert first.status == Status.OK, first.summary
    assert "not verified yet" in first.summary and first.exposures["cross_region"] is None
    harness.run("backups")
    after = harness.run("replica_copy")
    assert after.status == Status.OK and after.exposures["cross_region"] is not None


def test_a_same_size_file_that_is_not_the_backup_is_no_copy(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    """A file:// replica gives no checksum: a file of the backup's size with other bytes (here
    the same dump with one byte flipped) is not its copy; the real copy is, once each is read
    through SHA-256 (kept, 0600, with the version of each file it read)."""
    now = time.time()
    primary = file_store(tmp_path / "primary", {"app-1.dump": (dumps["good"], now - 600)})
    replica = file_store(tmp_path / "replica", {"app-1.dump": (dumps["flipped"], now - 500)})
    assert len(dumps["flipped"]) == len(dumps["good"])
    harness = CheckHarness(make_config([{"name": "db", "backups": {
        "store": f"file://{primary}/", "replica_store": f"file://{replica}/",
    }}], state_dir=str(tmp_path / "state")))  # fmt: skip
    harness.run("backups")
    forged = harness.run("replica_copy")
    assert forged.status == Status.CRITICAL, forged.summary
    assert sample(forged, "drwatch_replica_newest_verified_present") == 0
    assert forged.exposures["cross_region"] == float("inf")
    (replica / "app-1.dump").write_bytes(dumps["good"])
    copied = harness.run("replica_copy")
    assert copied.status == Status.OK, copied.summary
    assert sample(copied, "drwatch_replica_newest_verified_present") == 1
    digests = tmp_path / "state" / "digests-db.json"
    assert digests.stat().st_mode & 0o777 == 0o600
    (replica / "app-1.dump").write_bytes(dumps["flipped"])  # rewritten in place, same size
    assert harness.run("replica_copy").status == Status.CRITICAL
