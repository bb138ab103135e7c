"""Verification on a real streaming standby: the primary runs none of it, the check says which
server it read and how far behind, and a standby too far behind cannot judge freshness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.pgcluster import ARCHIVE_COPY, PgCluster, wait_until
from tests.helpers import CheckHarness, make_config, sample

VERIFICATION = {
    "freshness": [{"table": "events", "column": "at", "max_age": "1h"}],
    "daily_counts": [{"table": "events", "column": "at", "days": 3}],
    "gaps": [{"table": "events", "column": "at", "threshold": "1h", "lookback": "1d"}],
}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[PgCluster, PgCluster]]:
    primary = PgCluster().init(ARCHIVE_COPY).start()
    primary.execute(
        "CREATE TABLE events (id serial PRIMARY KEY, at timestamptz NOT NULL);"
        "INSERT INTO events (at) SELECT now() - make_interval(mins => m)"
        " FROM generate_series(1, 2000) AS m"
    )
    standby = primary.create_standby().start()
    try:
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


def _caught_up(primary: PgCluster, standby: PgCluster) -> bool:
    sent = primary.execute("SELECT pg_current_wal_lsn()::text")[0][0]
    return bool(standby.execute(f"SELECT pg_last_wal_replay_lsn() >= '{sent}'")[0][0])


def _scans(cluster: PgCluster) -> int:
    row = cluster.execute(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
        "WHERE relname = 'events'"
    )
    return int(row[0][0])


def _harness(primary: PgCluster, standby: PgCluster, tmp: str, **options: object) -> CheckHarness:
    pg = {"dsn": primary.dsn(), "verification": {**VERIFICATION, "dsn": standby.dsn(), **options}}
    return CheckHarness(make_config([{"name": "db", "postgres": pg}], state_dir=tmp))


def test_the_primary_runs_no_verification(pair: tuple[PgCluster, PgCluster], tmp_path) -> None:  # type: ignore[no-untyped-def]
    primary, standby = pair
    wait_until(lambda: _caught_up(primary, standby), 30, what="standby caught up")
    before = _scans(primary)
    result = _harness(primary, standby, str(tmp_path)).run("verification")
    assert result.up and "on a standby" in result.summary, result.summary
    assert sample(result, "drwatch_verification_on_standby") == 1
    assert sample(result, "drwatch_verification_replay_lag_seconds") == 0
    assert sample(result, "drwatch_table_newest_row_age_seconds", table="events") is not None
    primary.execute("SELECT pg_stat_force_next_flush()")
    assert _scans(primary) == before  # the primary's events table was not read
    # The standby's session is kept for the next run: its counts reach pg_stat_user_tables
    # when the backend flushes them while idle (within seconds), not at its exit.
    wait_until(lambda: _scans(standby) > 0, 15, what="the standby's scans counted")


def test_a_standby_far_behind_cannot_judge_freshness(
    pair: tuple[PgCluster, PgCluster],
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    primary, standby = pair
    primary.execute("INSERT INTO events (at) VALUES (now())")  # a commit the standby replays
    wait_until(lambda: _caught_up(primary, standby), 30, what="standby caught up")
    standby.execute("SELECT pg_wal_replay_pause()")
    try:
        primary.execute("INSERT INTO events (at) VALUES (now())")
        harness = _harness(primary, standby, str(tmp_path), max_replay_lag="1s")
        wait_until(
            lambda: (sample(harness.run("verification"), "drwatch_verification_replay_lag_seconds")
                     or 0) > 1,
            30,
            what="the standby 1 s behind",
        )  # fmt: skip
        result = harness.run("verification")
        assert "events: freshness cannot be judged, the standby is" in result.summary
        assert sample(result, "drwatch_table_newest_row_age_seconds", table="events") is None
        assert sample(result, "drwatch_table_rows", table="events", window="0-24h") is not None
    finally:
        standby.execute("SELECT pg_wal_replay_resume()")
