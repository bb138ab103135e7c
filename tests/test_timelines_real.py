"""Timelines on real servers: a standby promoted while the old primary goes on archiving (plain
layout), and a real pgBackRest restore + promote (pgBackRest layout). In both, the new timeline's
segments share numbers with the abandoned timeline's; a segment lost on the new timeline must be
found although the abandoned timeline holds a file with the same number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.base import Status
from sandbox.pgcluster import ARCHIVE_COPY, PgCluster, wait_until
from tests.backup_tools import PgBackRest
from tests.helpers import CheckHarness, make_config, sample


def _harness(server: PgCluster | None, tmp_path: Path, **backups: Any) -> CheckHarness:
    target: dict[str, Any] = {
        "name": "db",
        "backups": {"wal_segment_size": 16 * 1024 * 1024, **backups},
    }
    if server is not None:
        target["postgres"] = {"dsn": server.dsn()}
    return CheckHarness(make_config([target], state_dir=str(tmp_path / "state")))


def _wal_files(archive: Path) -> dict[str, Path]:
    """PostgreSQL file name -> path, for plain copies and pgBackRest's hashed, compressed names."""
    out = {}
    for path in archive.rglob("*"):
        name = path.name.split("-")[0].split(".")[0]
        if path.is_file() and len(name) == 24 and path.name[24:25] in ("", "-"):
            out[name] = path
    return out


def _twin_on_the_new_timeline(archive: Path) -> str:
    """A timeline-2 segment whose number timeline 1 also holds (after the switch)."""
    names = _wal_files(archive)
    twins = sorted(n for n in names if n.startswith("00000002") and "00000001" + n[8:] in names)
    assert len(twins) >= 2, sorted(names)
    return twins[0]


def _wait_archived(server: PgCluster) -> None:
    try:
        wait_until(server.archive_caught_up, 60, what="archived every segment")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; log: {server.logfile.read_text()[-2000:]}") from None


@pytest.fixture(scope="module")
def failover() -> Iterator[tuple[PgCluster, PgCluster]]:
    """A standby promoted to timeline 2 while the old primary goes on writing timeline 1 into the
    same archive (a split brain a fencing failure leaves behind); both archive."""
    primary = PgCluster().init(ARCHIVE_COPY).start()
    standby: PgCluster | None = None
    try:
        primary.write_wal(2)
        primary.base_backup()
        standby = primary.create_standby().start()
        primary.write_wal(2)
        lsn = primary.execute("SELECT pg_current_wal_lsn()::text")[0][0]
        wait_until(
            lambda: standby.execute(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'")[0][0],  # type: ignore[union-attr]
            30, what="standby replayed",
        )  # fmt: skip
        standby.promote()
        primary.write_wal(5)  # the abandoned timeline goes on past the switch
        standby.write_wal(3)
        _wait_archived(primary)
        _wait_archived(standby)
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


def test_a_promoted_standby_timeline_is_followed(
    failover: tuple[PgCluster, PgCluster], tmp_path: Path
) -> None:
    old, new = failover
    for server in (new, None):  # asking the new primary, and from the store alone
        result = _harness(server, tmp_path, wal_store=f"file://{old.archive}/").run("wal_archive")
        assert result.status == Status.OK, result.summary
        assert sample(result, "drwatch_wal_archive_timeline") == 2
        assert sample(result, "drwatch_wal_archive_missing_segments") == 0
        assert sample(result, "drwatch_wal_archive_abandoned_files") >= 5  # timeline 1's
        assert result.values["newest_segment"].startswith("00000002")
        switch = sample(result, "drwatch_wal_archive_timeline_start_position_bytes", timeline="2")
        assert switch > 0 and "timeline 2 (from timeline 1 to " in result.summary
    # Asking the old primary: its timeline 1 is the current one there, continuous too.
    on_old = _harness(old, tmp_path, wal_store=f"file://{old.archive}/").run("wal_archive")
    assert sample(on_old, "drwatch_wal_archive_timeline") == 1, on_old.summary


def test_a_segment_lost_on_the_new_timeline_is_not_hidden_by_the_old_one(
    failover: tuple[PgCluster, PgCluster], tmp_path: Path
) -> None:
    old, new = failover
    victim = _twin_on_the_new_timeline(old.archive)
    path = _wal_files(old.archive)[victim]
    kept = tmp_path / "kept"
    path.rename(kept)
    try:
        result = _harness(new, tmp_path, wal_store=f"file://{old.archive}/").run("wal_archive")
        assert result.status == Status.CRITICAL
        assert f"1 segment missing: {victim}" in result.summary
        assert result.exposures["pitr"] > 0
    finally:
        kept.rename(path)


@pytest.fixture(scope="module")
def restored() -> Iterator[PgBackRest]:
    """pgBackRest: a full backup on timeline 1, timeline 1 goes on, then the runbook's PITR:
    restored to the backup's end and promoted (timeline 2), which goes on archiving."""
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    cluster.init(tool.archive_command).start()
    try:
        tool.run("stanza-create")
        cluster.write_wal(1)
        tool.run("backup", "--type=full")
        cluster.write_wal(5)
        _wait_archived(cluster)
        cluster.stop()
        tool.run("restore", "--delta", "--type=immediate", "--target-action=promote")
        cluster.start()
        wait_until(
            lambda: not cluster.execute("SELECT pg_is_in_recovery()")[0][0], 60, what="promoted"
        )
        cluster.write_wal(5)
        _wait_archived(cluster)
        yield tool
    finally:
        cluster.destroy()


def _pgbackrest_harness(tool: PgBackRest, tmp_path: Path, server: bool) -> CheckHarness:
    return _harness(
        tool.cluster if server else None,
        tmp_path,
        wal_store=f"file://{tool.archive}/",
        base_store=f"file://{tool.repo}/backup/main/",
        retention="1s",
    )


def test_a_pgbackrest_pitr_timeline_is_followed(restored: PgBackRest, tmp_path: Path) -> None:
    assert "00000002.history" in {p.name for p in restored.archive.rglob("*")}
    for server in (True, False):
        harness = _pgbackrest_harness(restored, tmp_path, server)
        result = harness.run("wal_archive")
        assert result.status == Status.OK, result.summary
        assert sample(result, "drwatch_wal_archive_timeline") == 2
        assert result.values["newest_segment"].startswith("00000002"), result.summary
        window = harness.run("base_backups")
        assert window.status == Status.OK, window.summary
        assert sample(window, "drwatch_recovery_window_seconds") > 0


def test_a_segment_lost_after_a_pgbackrest_pitr_is_found(
    restored: PgBackRest, tmp_path: Path
) -> None:
    victim = _twin_on_the_new_timeline(restored.archive)
    path = _wal_files(restored.archive)[victim]
    kept = tmp_path / "kept"
    path.rename(kept)
    try:
        harness = _pgbackrest_harness(restored, tmp_path, True)
        result = harness.run("wal_archive")
        assert result.status == Status.CRITICAL, result.summary
        assert f"1 segment missing: {victim}" in result.summary
        # The full backup (timeline 1) no longer has continuous WAL to the newest segment.
        window = harness.run("base_backups")
        assert sample(window, "drwatch_recovery_window_seconds") == 0, window.summary
        assert window.exposures["pitr"] == float("inf")
        assert "no base backup has continuous WAL" in window.summary
    finally:
        kept.rename(path)


def test_the_pitr_drill_follows_the_timeline_after_a_pgbackrest_pitr(
    restored: PgBackRest, tmp_path: Path
) -> None:
    """The drill restores the newest set (taken on timeline 1) and recovers along the history
    to timeline 2's end: the newest segment it must reach is timeline 2's, not timeline 1's."""
    import time

    from exporter.drills import pitr
    from tests.helpers import reachable

    cluster = restored.cluster
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    reachable(scratch)
    target = {
        "name": "db",
        "postgres": {"dsn": cluster.dsn()},
        "backups": {"wal_store": f"file://{restored.archive}/"},
        "drills": {
            "schedule": "0 3 * * 0",
            "scratch": {"user": "postgres", "dir": str(scratch)},
            "pitr": {"pgbackrest": {"config": str(restored.conf), "stanza": "main"}},
        },
    }
    config = make_config([target], state_dir=str(tmp_path / "state")).config
    result = pitr.run(config, config.targets[0], time.monotonic() + 180)
    assert result.ok, result.summary
    newest_tl2 = max(n for n in _wal_files(restored.archive) if n.startswith("00000002"))
    assert result.values["replayed_to_segment"][8:] >= newest_tl2[8:]
    # A segment lost on timeline 2 (timeline 1 holds its twin): recovery stops there, and the
    # drill names the timeline-2 WAL it cannot reach.
    victim = _twin_on_the_new_timeline(restored.archive)
    path = _wal_files(restored.archive)[victim]
    kept = tmp_path / "kept"
    path.rename(kept)
    try:
        gap = pitr.run(config, config.targets[0], time.monotonic() + 180)
    finally:
        kept.rename(path)
    assert not gap.ok, gap.summary
    assert f"but the archive holds WAL up to {newest_tl2}" in gap.summary
