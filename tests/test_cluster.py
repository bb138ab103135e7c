"""The cluster check on real servers: pg_wal's size, a real data page checksum failure (a
corrupted page read back), and the timeline a promotion starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks.base import Status
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness, make_config, sample


def _harness(cluster: PgCluster) -> CheckHarness:
    return CheckHarness(make_config([{"name": "db", "postgres": {"dsn": cluster.dsn()}}]))


@pytest.fixture
def checksummed() -> Iterator[PgCluster]:
    c = PgCluster().init(None, checksums=True).start()
    try:
        yield c
    finally:
        c.destroy()


def test_a_corrupted_page_is_a_checksum_failure(checksummed: PgCluster) -> None:
    cluster = checksummed
    cluster.execute(
        "CREATE TABLE t AS SELECT g AS x, repeat('x', 100) AS pad FROM generate_series(1, 1000) g"
    )
    healthy = _harness(cluster).run("cluster")
    assert healthy.status == Status.OK, healthy.summary
    assert sample(healthy, "drwatch_pg_data_checksums_enabled") == 1
    assert sample(healthy, "drwatch_pg_checksum_failures_total", database="postgres") == 0
    assert sample(healthy, "drwatch_pg_wal_directory_bytes") >= 16 * 1024 * 1024
    relation = cluster.datadir / cluster.execute("SELECT pg_relation_filepath('t')")[0][0]
    cluster.stop()
    with open(relation, "r+b") as f:  # a byte of the first page's tuples, as bad storage would
        f.seek(4000)
        f.write(b"\xff\xfe")
    cluster.start()
    with pytest.raises(Exception, match="invalid page in block 0"):  # its checksum failed
        cluster.execute("SELECT count(*) FROM t")
    result = _harness(cluster).run("cluster")
    assert sample(result, "drwatch_pg_checksum_failures_total", database="postgres") >= 1
    assert sample(result, "drwatch_pg_checksum_last_failure_timestamp_seconds", database="postgres")
    assert result.status == Status.CRITICAL
    assert "checksum failures: postgres" in result.summary


def test_without_data_checksums_the_counter_is_absent(cluster: PgCluster) -> None:
    result = _harness(cluster).run("cluster")
    assert sample(result, "drwatch_pg_data_checksums_enabled") == 0
    assert sample(result, "drwatch_pg_checksum_failures_total", database="postgres") is None
    assert "data checksums off" in result.summary


def test_a_promotion_starts_a_new_timeline(cluster: PgCluster) -> None:
    standby = cluster.create_standby().start()
    try:
        assert sample(_harness(cluster).run("cluster"), "drwatch_pg_timeline") == 1
        standby.promote()
        wait_until(
            lambda: sample(_harness(standby).run("cluster"), "drwatch_pg_timeline") == 2,
            30,
            what="the promoted standby's checkpoint on timeline 2",
        )
    finally:
        standby.destroy()
