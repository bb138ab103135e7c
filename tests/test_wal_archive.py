"""WAL archive continuity against a real archive written by a test cluster."""

from __future__ import annotations

import json
from pathlib import Path

from checks.base import Status
from checks.support.continuity import read_continuity, segment_name
from checks.support.stores import StoredObject
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness, drwatch, make_config, sample, write_config

SEG = 16 * 1024 * 1024


def _target(primary: PgCluster, archive_of: PgCluster | None = None) -> dict[str, object]:
    store = archive_of or primary
    return {
        "name": "db",
        "postgres": {"dsn": primary.dsn()},
        "backups": {"store": f"file://{store.backups}/", "wal_store": f"file://{store.archive}/"},
    }


def _harness(
    primary: PgCluster, tmp_path: Path, archive_of: PgCluster | None = None
) -> CheckHarness:
    return CheckHarness(make_config([_target(primary, archive_of)], state_dir=str(tmp_path)))


def test_continuous_archive_then_one_segment_deleted(cluster: PgCluster, tmp_path: Path) -> None:
    cluster.write_wal(2)
    cluster.base_backup()
    cluster.write_wal(5)
    wait_until(cluster.archive_caught_up, 30, what="archive caught up")
    harness = _harness(cluster, tmp_path)
    result = harness.run("wal_archive")
    assert result.up and result.status == Status.OK, result.summary
    assert sample(result, "drwatch_wal_archive_missing_segments") == 0
    assert sample(result, "drwatch_wal_archive_base_backups") == 1
    assert sample(result, "drwatch_wal_archive_last_archived_present") == 1
    assert sample(result, "drwatch_wal_segment_size_bytes_used") == SEG
    assert "pitr" not in result.exposures

    segments = sorted(p.name for p in cluster.archive.iterdir() if len(p.name) == 24)
    label = next(p.name for p in cluster.archive.iterdir() if p.name.endswith(".backup"))
    after_backup = [s for s in segments if s > label[:24]]
    victim = after_backup[len(after_backup) // 2]
    (cluster.archive / victim).unlink()
    broken = harness.run("wal_archive")
    assert sample(broken, "drwatch_wal_archive_missing_segments") == 1
    assert broken.status == Status.CRITICAL
    assert f"1 segment missing: {victim}" in broken.summary
    assert broken.exposures["pitr"] > 0  # recovery stops at the gap

    config = write_config(tmp_path / "c.yml", [_target(cluster)], state_dir=str(tmp_path))
    proc = drwatch("check", "--config", str(config), "--format", "json", timeout=120)
    doc = json.loads(proc.stdout)
    row = next(r for r in doc["results"] if r["check"] == "wal_archive")
    assert row["status"] == "CRITICAL" and victim in row["summary"]
    assert proc.returncode == 2


def test_segments_before_the_newest_base_backup_do_not_count(
    cluster: PgCluster, tmp_path: Path
) -> None:
    cluster.write_wal(4)
    wait_until(cluster.archive_caught_up, 30, what="archive caught up")
    oldest = sorted(p.name for p in cluster.archive.iterdir() if len(p.name) == 24)[1]
    (cluster.archive / oldest).unlink()  # a hole older than the base backup below
    cluster.base_backup()
    cluster.write_wal(2)
    wait_until(cluster.archive_caught_up, 30, what="archive caught up")
    result = _harness(cluster, tmp_path).run("wal_archive")
    assert sample(result, "drwatch_wal_archive_missing_segments") == 0, result.summary


def test_timeline_switch_is_not_a_gap(cluster: PgCluster, tmp_path: Path) -> None:
    cluster.write_wal(2)
    standby = cluster.create_standby().start()  # archives into the same store once promoted
    try:
        wait_until(lambda: standby.execute("SELECT pg_is_in_recovery()")[0][0], 30, what="standby")
        cluster.write_wal(2)
        wait_until(cluster.archive_caught_up, 30, what="archive caught up")
        primary_lsn = cluster.execute("SELECT pg_current_wal_lsn()::text")[0][0]
        wait_until(
            lambda: standby.execute(f"SELECT pg_last_wal_replay_lsn() >= '{primary_lsn}'")[0][0],
            30,
            what="standby replayed",
        )
        cluster.stop()  # the primary is lost; fail over
        standby.promote()
        standby.write_wal(3)
        try:
            wait_until(standby.archive_caught_up, 60, what="new primary archived")
        except TimeoutError as exc:  # say why: what waits, and what the archiver said
            waiting = standby.execute(
                "SELECT name FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
            )
            raise AssertionError(
                f"{exc}; waiting: {waiting}; log: {standby.logfile.read_text()[-2000:]}"
            ) from None
        names = {p.name for p in cluster.archive.iterdir()}
        assert "00000002.history" in names
        result = _harness(standby, tmp_path, archive_of=cluster).run("wal_archive")
        assert result.up, result.summary
        assert sample(result, "drwatch_wal_archive_missing_segments") == 0, result.summary
        assert sample(result, "drwatch_wal_archive_timeline") == 2, (result.summary, sorted(names))
    finally:
        standby.destroy()


def test_archiver_success_for_a_file_that_never_arrived(cluster: PgCluster, tmp_path: Path) -> None:
    cluster.write_wal(3)
    wait_until(cluster.archive_caught_up, 30, what="archive caught up")
    last = cluster.execute("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
    (cluster.archive / last).unlink()
    result = _harness(cluster, tmp_path).run("wal_archive")
    assert sample(result, "drwatch_wal_archive_last_archived_present") == 0
    assert result.status == Status.CRITICAL
    assert f"the archiver reported {last} archived, but it is not in the store" in result.summary


def _objects(names: list[str]) -> list[StoredObject]:
    return [StoredObject(n, SEG, float(i)) for i, n in enumerate(names)]


def analyse(objects: list[StoredObject], segment_size: int):  # type: ignore[no-untyped-def]
    history = {"00000002.history": "1\t0/5000000\tno recovery target specified\n"}
    return read_continuity(objects, segment_size, history.__getitem__)


def test_analysis_of_names() -> None:
    seg = [segment_name(1, n, SEG) for n in range(1, 10)]
    result = analyse(_objects(seg), SEG)
    assert (result.segments, result.missing) == (9, 0)
    gappy = analyse(_objects(seg[:3] + seg[6:]), SEG)
    assert gappy.missing == 3 and gappy.gaps == [(4, 6)]
    assert gappy.before_first_gap is not None and gappy.before_first_gap.name == seg[2]
    # Compressed names and sub-directories (WAL-G style) count the same.
    zipped = analyse(_objects([f"wal_005/{n}.lz4" for n in seg]), SEG)
    assert (zipped.segments, zipped.missing) == (9, 0)
    # A timeline switch: TL1 up to 5 (.partial), TL2 from 5 on, with its history file.
    switched = (
        seg[:4]
        + [seg[4] + ".partial", "00000002.history"]
        + [segment_name(2, n, SEG) for n in range(5, 9)]
    )
    assert analyse(_objects(switched), SEG).missing == 0


def test_compressed_wal_without_postgres_states_its_segment_size(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """WAL-G's default (lz4) and no postgres section: the segment size comes from the segments'
    own first page, not a config error."""
    from tests.wal_codecs import COMPRESS

    cluster.write_wal(3)
    wait_until(cluster.archive_caught_up, 30, what="archive caught up")
    store = tmp_path / "walg"
    (store / "wal_005").mkdir(parents=True)
    for path in cluster.archive.iterdir():
        if len(path.name) == 24:
            (store / "wal_005" / f"{path.name}.lz4").write_bytes(COMPRESS["lz4"](path.read_bytes()))
    # WAL-G keeps its base backups beside the WAL (basebackups_005/): the same prefix
    target = {"name": "db", "backups": {"wal_store": f"file://{store}/",
                                        "base_store": f"file://{store}/"}}  # fmt: skip
    result = CheckHarness(make_config([target], state_dir=str(tmp_path))).run("wal_archive")
    assert result.status == Status.OK, result.summary
    assert sample(result, "drwatch_wal_segment_size_bytes_used") == SEG
    assert "walg layout" in result.summary
