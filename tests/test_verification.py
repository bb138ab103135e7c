"""The runbook's data verification queries, against data the tests insert."""

from __future__ import annotations

import threading

import pytest

from checks.base import Status
from exporter.runtime.results import CheckResult
from sandbox.pgcluster import PgCluster, wait_until
from sandbox.seed import seed
from tests.helpers import CheckHarness, make_config, run_verification, sample


def test_gaps_found_exactly_inside_the_lookback(db: PgCluster) -> None:
    db.execute(
        "CREATE TABLE events (id serial, at timestamptz);"
        "INSERT INTO events (at) SELECT now() - h * interval '1 hour' "
        "FROM unnest(ARRAY[20, 10, 9, 6, 5.5, 1]) AS h",
        "verify",
    )
    # Inside 12 h: 10 -> 9 (1 h), 9 -> 6 (3 h), 6 -> 5.5, 5.5 -> 1 (4.5 h). 20 -> 10 is outside.
    result = run_verification(
        db, gaps=[{"table": "events", "column": "at", "threshold": "2h", "lookback": "12h"}]
    )
    assert result.up, result.summary
    assert sample(result, "drwatch_table_gaps", table="events") == 2
    assert sample(result, "drwatch_table_largest_gap_seconds", table="events") == pytest.approx(
        4.5 * 3600, abs=1
    )
    assert sample(result, "drwatch_table_gap_threshold_seconds", table="events") == 7200
    assert result.status == Status.WARNING
    assert "2 gaps over 2h" in result.summary

    quiet = run_verification(
        db, gaps=[{"table": "events", "column": "at", "threshold": "5h", "lookback": "12h"}]
    )
    assert sample(quiet, "drwatch_table_gaps", table="events") == 0
    assert quiet.status == Status.OK


def test_orphans_counted_with_not_exists_even_when_the_parent_column_has_nulls(
    db: PgCluster,
) -> None:
    db.execute(
        "CREATE TABLE parents (ref int);"
        "INSERT INTO parents VALUES (1), (2), (NULL);"
        "CREATE TABLE children (id serial, parent_ref int);"
        "INSERT INTO children (parent_ref) VALUES (1), (2), (3), (4), (NULL);",
        "verify",
    )
    # The runbook's NOT IN finds nothing here: NULL in the subquery makes every comparison unknown.
    runbook = db.execute(
        "SELECT count(*) FROM children WHERE parent_ref NOT IN (SELECT ref FROM parents)", "verify"
    )
    assert runbook[0][0] == 0
    result = run_verification(
        db,
        orphans=[
            {
                "table": "children",
                "column": "parent_ref",
                "parent_table": "parents",
                "parent_column": "ref",
            }
        ],
    )
    assert result.up, result.summary
    got = sample(
        result,
        "drwatch_table_orphan_rows",
        table="children",
        column="parent_ref",
        parent_table="parents",
    )
    assert got == 2  # 3 and 4; a NULL reference is not an orphan
    assert result.status == Status.WARNING


def test_seeded_runbook_schema_gap_and_orphans(db: PgCluster) -> None:
    with db.connect("verify") as conn:
        seeded = seed(conn, debates=2000, days=10, gap_hours=2, orphans=3)
    result = run_verification(
        db,
        gaps=[{"table": "debates", "column": "created_at", "threshold": "1h", "lookback": "7d"}],
        orphans=[
            {
                "table": "debate_messages",
                "column": "debate_id",
                "parent_table": "debates",
                "parent_column": "id",
            }
        ],
        freshness=[{"table": "debates", "column": "created_at", "max_age": "1h"}],
        daily_counts=[{"table": "debates", "column": "created_at", "days": 3}],
        group_counts=[{"table": "knowledge_nodes", "by": "node_type", "top": 3}],
    )
    assert result.up, result.summary
    assert sample(result, "drwatch_table_gaps", table="debates") == 1
    largest = sample(result, "drwatch_table_largest_gap_seconds", table="debates")
    assert 2 * 3600 <= largest <= 2 * 3600 + 2 * (10 * 86400 / 2000)
    orphans = sample(
        result,
        "drwatch_table_orphan_rows",
        table="debate_messages",
        column="debate_id",
        parent_table="debates",
    )
    assert orphans == seeded.orphans
    assert sample(result, "drwatch_table_newest_row_age_seconds", table="debates") < 60
    assert sample(result, "drwatch_table_rows", table="debates", window="0-24h") == 200
    assert sample(result, "drwatch_table_groups", table="knowledge_nodes", column="node_type") == 5
    assert (
        sample(
            result,
            "drwatch_table_group_rows",
            table="knowledge_nodes",
            column="node_type",
            group="other",
        )
        == 200
    )


def test_daily_counts_freshness_and_group_counts(db: PgCluster) -> None:
    db.execute(
        "CREATE TABLE d (at timestamp with time zone, kind text);"
        "INSERT INTO d SELECT now() - h * interval '1 hour', k FROM (VALUES "
        "(1, 'a'), (2, 'a'), (3, 'a'), (25, 'b'), (26, 'b'), (49, 'c'), (50, NULL)) AS v(h, k)",
        "verify",
    )
    result = run_verification(
        db,
        daily_counts=[{"table": "d", "column": "at", "days": 4}],
        freshness=[{"table": "d", "column": "at", "max_age": "30m"}],
        group_counts=[{"table": "d", "by": "kind", "top": 2}],
    )
    assert result.up, result.summary
    windows = {
        w: sample(result, "drwatch_table_rows", table="d", window=w)
        for w in ("0-24h", "24-48h", "48-72h", "72-96h")
    }
    assert windows == {"0-24h": 3, "24-48h": 2, "48-72h": 2, "72-96h": 0}
    assert sample(result, "drwatch_table_newest_row_age_seconds", table="d") == pytest.approx(
        3600, abs=5
    )
    assert result.status == Status.WARNING and "newest row is 1h old (max 30m)" in result.summary
    groups = {
        g: sample(result, "drwatch_table_group_rows", table="d", column="kind", group=g)
        for g in ("a", "b", "other")
    }
    assert groups == {"a": 3, "b": 2, "other": 2}  # c and NULL beyond the top 2


def test_empty_table_is_infinitely_stale(db: PgCluster) -> None:
    db.execute("CREATE TABLE empty (at timestamptz)", "verify")
    result = run_verification(db, freshness=[{"table": "empty", "column": "at", "max_age": "1h"}])
    assert sample(result, "drwatch_table_newest_row_age_seconds", table="empty") == float("inf")
    assert result.status == Status.WARNING and "empty is empty" in result.summary


def test_identifiers_from_config_are_quoted_not_executed(db: PgCluster) -> None:
    db.execute(
        "CREATE TABLE debates (id int, created_at timestamptz DEFAULT now());"
        "INSERT INTO debates (id) VALUES (1);"
        'CREATE TABLE "we;ird""name" (at timestamptz DEFAULT now()); INSERT INTO "we;ird""name" DEFAULT VALUES;',
        "verify",
    )
    hostile = 'debates"; DROP TABLE debates; --'
    result = run_verification(
        db,
        freshness=[
            {"table": hostile, "column": "created_at", "max_age": "1h"},
            {"table": 'we;ird"name', "column": "at", "max_age": "1h"},
        ],
    )
    assert not result.up
    assert "does not exist" in result.summary  # the whole string was one (missing) table name
    assert db.execute("SELECT count(*) FROM debates", "verify")[0][0] == 1  # not dropped
    # The other item still ran: a real table with a quote and a semicolon in its name works.
    assert sample(result, "drwatch_table_newest_row_age_seconds", table='we;ird"name') < 60
    assert result.error_reasons == ("query",)


def test_postgres_dying_mid_verification_is_connect_critical(cluster: PgCluster) -> None:
    verification = {
        "timeout": "30s",
        "custom": [
            {"name": "slow", "help": "Slow.", "sql": "SELECT 1 AS value FROM pg_sleep(20)"},
            {"name": "after", "help": "After.", "sql": "SELECT 1 AS value"},
        ],
    }
    harness = CheckHarness(
        make_config(
            [{"name": "app", "postgres": {"dsn": cluster.dsn(), "verification": verification}}]
        )
    )
    results: list[CheckResult] = []
    worker = threading.Thread(target=lambda: results.append(harness.run("verification")))
    worker.start()
    wait_until(
        lambda: cluster.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        )[0][0],
        15,
        what="the slow item running",
    )
    cluster.stop("immediate")
    worker.join(30)
    (result,) = results
    assert not result.up and result.error_reasons == ("connect",), result.summary
    assert result.status == Status.CRITICAL


def test_an_item_that_times_out_is_named_and_the_others_still_run(db: PgCluster) -> None:
    db.execute(
        "CREATE TABLE ticks (at timestamptz DEFAULT now()); INSERT INTO ticks DEFAULT VALUES",
        "verify",
    )
    result = run_verification(
        db,
        item_timeout="300ms",
        custom=[{"name": "slow", "help": "Slow.", "sql": "SELECT 1 AS value FROM pg_sleep(5)"}],
        freshness=[{"table": "ticks", "column": "at", "max_age": "1h"}],
    )
    assert result.error_reasons == ("timeout",), result.summary
    assert "verification.custom[0]" in result.summary and "statement timeout" in result.summary
    assert sample(result, "drwatch_table_newest_row_age_seconds", table="ticks") < 60
    assert sample(result, "drwatch_verification_item_duration_seconds", item="custom[0]") < 2
    assert "(cycle " in result.summary  # what the cycle cost
