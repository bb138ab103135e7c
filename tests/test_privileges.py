"""drwatch works with the least-privilege role the README documents, and says what is missing."""

from __future__ import annotations

import logging

import pytest

from checks.base import Status
from checks.support import pg
from sandbox.pgcluster import PgCluster
from sandbox.seed import seed
from tests.helpers import CheckHarness, make_config, sample

# The GRANTs of README.md, "Least privilege".
GRANTS = """
CREATE ROLE drwatch LOGIN;
GRANT pg_monitor TO drwatch;
GRANT SELECT ON debates, debate_messages, knowledge_nodes TO drwatch;
"""

VERIFICATION = {
    "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}],
    "gaps": [{"table": "debates", "column": "created_at", "threshold": "3h", "lookback": "7d"}],
    "orphans": [
        {
            "table": "debate_messages",
            "column": "debate_id",
            "parent_table": "debates",
            "parent_column": "id",
        }
    ],
    "group_counts": [{"table": "knowledge_nodes", "by": "node_type"}],
    "daily_counts": [{"table": "debates", "column": "created_at", "days": 2}],
}


def _harness(cluster: PgCluster, user: str) -> CheckHarness:
    pg = {"dsn": cluster.dsn(user=user), "verification": VERIFICATION}
    return CheckHarness(make_config([{"name": "db", "postgres": pg}]))


def test_every_check_runs_with_pg_monitor_and_select_only(cluster: PgCluster) -> None:
    with cluster.connect() as conn:
        seed(conn, debates=500, orphans=2)
    cluster.execute(GRANTS)
    cluster.execute("SELECT pg_switch_wal()")
    harness = _harness(cluster, "drwatch")
    for check in (
        "wal_archiving",
        "replication",
        "replication_slots",
        "cluster",
        "connections",
        "verification",
    ):
        result = harness.run(check)
        assert result.up, f"{check}: {result.summary}"
    wal = harness.run("wal_archiving")
    assert sample(wal, "drwatch_pg_archive_ready_files") is not None
    assert cluster.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'drwatch'") == [(False,)]


def test_missing_privileges_are_named(cluster: PgCluster) -> None:
    with cluster.connect() as conn:
        seed(conn, debates=100)
    cluster.execute("CREATE ROLE nobody LOGIN")
    harness = _harness(cluster, "nobody")
    wal = harness.run("wal_archiving")
    assert wal.up and wal.status == Status.WARNING
    assert "cannot list archive_status (grant pg_monitor to drwatch's role)" in wal.summary
    verification = harness.run("verification")
    assert not verification.up and verification.status == Status.UNKNOWN
    assert "permission denied for table debates" in verification.summary
    assert set(verification.error_reasons) == {"permission"}


def test_a_superuser_connection_is_warned_about_once(
    cluster: PgCluster, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "_superusers_warned", set())  # earlier tests may have warned
    cluster.execute(
        GRANTS.replace("GRANT SELECT ON debates, debate_messages, knowledge_nodes TO drwatch;", "")
    )
    caplog.set_level(logging.WARNING, logger="drwatch.postgres")
    least = CheckHarness(
        make_config([{"name": "db", "postgres": {"dsn": cluster.dsn(user="drwatch")}}])
    )
    least.run("connections")
    assert not caplog.records
    superuser = CheckHarness(make_config([{"name": "db", "postgres": {"dsn": cluster.dsn()}}]))
    for check in ("connections", "replication", "wal_archiving", "connections"):
        assert superuser.run(check).up
    (warning,) = caplog.records
    assert warning.getMessage().startswith("connected as a superuser")
    assert warning.user == "postgres"  # type: ignore[attr-defined]
