"""Jobs from the config: each check's interval and deadline, and what checks share."""

from __future__ import annotations

from pathlib import Path

from exporter.runtime.jobs import build_jobs
from tests.helpers import make_config


def _jobs(tmp_path: Path, target: dict[str, object]) -> dict[str, tuple[float, float]]:
    jobs, _ = build_jobs(make_config([{"name": "t", **target}], state_dir=str(tmp_path)).config)
    return {job.check: (job.interval, job.timeout) for job in jobs}


def test_a_check_takes_its_own_schedule_else_its_sections(tmp_path: Path) -> None:
    dsn = "postgresql://127.0.0.1:1/x"
    schedule = _jobs(
        tmp_path,
        {
            "postgres": {
                "dsn": dsn,
                "interval": "20s",
                "timeout": "4s",
                "connections": {"interval": "5s"},
                "replication": {"enabled": False},
                "verification": {"timeout": "2m", "orphans": [], "custom": []},
            }
        },
    )
    # verification has no item: nothing to run; replication is off.
    assert schedule == {
        "wal_archiving": (20.0, 4.0),
        "replication_slots": (20.0, 4.0),
        "cluster": (20.0, 4.0),
        "connections": (5.0, 4.0),
    }


def test_store_checks_and_redis_deadlines(tmp_path: Path) -> None:
    store = f"file://{tmp_path}/dumps/"
    schedule = _jobs(
        tmp_path,
        {
            "backups": {
                "store": store,
                "wal_store": f"file://{tmp_path}/wal/",
                "replica_store": f"file://{tmp_path}/copy/",
                "interval": "10m",
                "timeout": "1h",
                "listing_timeout": "90s",
            },
            "redis": {"url": "redis://127.0.0.1:1/0", "timeout": "2s"},
        },
    )
    assert schedule["backups"] == (600.0, 3600.0)
    assert schedule["wal_archive"] == (600.0, 600.0)  # listing only: no longer than its interval
    # It may read both copies of a backup through SHA-256 (a file:// store has no ETag): as long
    # as a full verification.
    assert schedule["replica_copy"] == (600.0, 3600.0)
    # The socket's own timeout reports first, naming the Redis command it waited for.
    assert schedule["redis_persistence"] == (15.0, 3.0)
    assert "redis_snapshots" not in schedule  # no snapshot store configured


def test_the_replica_check_reads_the_backups_checks_store_and_verdicts(tmp_path: Path) -> None:
    loaded = make_config(
        [
            {
                "name": "t",
                "backups": {
                    "store": f"file://{tmp_path}/dumps/",
                    "replica_store": f"file://{tmp_path}/copy/",
                },
            }
        ],
        state_dir=str(tmp_path),
    )
    _, checks = build_jobs(loaded.config)
    backups, replica = checks[("t", "backups")], checks[("t", "replica_copy")]
    assert replica.primary is backups.store  # type: ignore[attr-defined]
    assert replica.verdicts is backups.cache  # type: ignore[attr-defined]
