"""The pitr drill: a real pg_basebackup, a real archive, replayed and promoted in a scratch copy."""

from __future__ import annotations

import time
from pathlib import Path

from exporter.drills import pitr
from sandbox.pgcluster import PgCluster, wait_until
from sandbox.seed import seed
from tests.helpers import make_config


def _archived(cluster: PgCluster) -> None:
    cluster.execute("SELECT pg_switch_wal()")
    wait_until(
        lambda: cluster.execute(
            "SELECT last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) "
            "FROM pg_stat_archiver"
        )[0][0],
        30,
        what="WAL archived",
    )


def _setup(cluster: PgCluster, tmp_path: Path) -> Path:
    cluster.execute("CREATE DATABASE app")
    with cluster.connect("app") as conn:
        seed(conn, debates=500)
    base = cluster.backups / "base"
    cluster.tar_base_backup(base)
    # Written after the base backup: only WAL replay brings these back.
    cluster.execute(
        "INSERT INTO debates (title, created_at) SELECT 'after', now() FROM generate_series(1, 25)",
        "app",
    )
    _archived(cluster)
    return base


def _run(cluster: PgCluster, tmp_path: Path, base: Path | None):  # type: ignore[no-untyped-def]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for path in (scratch, *scratch.parents):
        if path == Path("/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o011)
    (tmp_path / "dumps").mkdir()
    target = {
        "name": "app",
        "postgres": {
            "dsn": cluster.dsn("app"),
            "verification": {
                "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}]
            },
        },
        "backups": {
            "store": f"file://{tmp_path}/dumps/",
            "wal_store": f"file://{cluster.archive}/",
        },
        "drills": {
            "schedule": "0 3 * * 0",
            "scratch": {"user": "postgres", "dir": str(scratch)},
            "pitr": {"base_store": f"file://{base}/"} if base else {},
        },
    }
    config = make_config([target], state_dir=str(tmp_path / "state")).config
    assert config.targets[0].drill_scenarios() == ["pitr"]
    return pitr.run(config, config.targets[0], time.monotonic() + 120)


def test_the_archive_replays_onto_the_base_backup(cluster: PgCluster, tmp_path: Path) -> None:
    base = _setup(cluster, tmp_path)
    written = time.time()
    result = _run(cluster, tmp_path, base)
    assert result.ok, result.summary
    assert result.recovered_to is not None and result.recovered_to > written - 30
    rows, missing = result.tables["debates"]
    assert missing == 0 and rows == cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert set(result.phases) == {"download", "restore", "verify"}
    assert not list((tmp_path / "scratch").iterdir()), "scratch left behind"


def test_a_gap_in_the_archive_stops_recovery_early_and_fails(
    cluster: PgCluster, tmp_path: Path
) -> None:
    base = _setup(cluster, tmp_path)
    # More WAL after the backup, then a segment in the middle lost.
    for _ in range(3):
        cluster.execute(
            "INSERT INTO debates (title, created_at) SELECT 'more', now() "
            "FROM generate_series(1, 10)",
            "app",
        )
        _archived(cluster)
    segments = sorted(p for p in cluster.archive.iterdir() if len(p.name) == 24)
    segments[-2].unlink()
    result = _run(cluster, tmp_path, base)
    assert not result.ok
    # Replay ends in the segment before the missing one (named on the new timeline after the
    # promotion); the missing one and the one after it are lost.
    stopped = result.values["replayed_to_segment"]
    assert stopped[8:] == segments[-3].name[8:], (stopped, segments[-3].name)
    assert f"but the archive holds WAL up to {segments[-1].name}" in result.summary
    assert "a gap; 2 segments of WAL after it cannot be replayed" in result.summary


def test_without_a_physical_base_backup_pitr_is_impossible(
    cluster: PgCluster, tmp_path: Path
) -> None:
    result = _run(cluster, tmp_path, None)
    assert not result.ok and result.summary == pitr.NO_BASE_BACKUP
