"""Custom SQL metrics (verification.custom) against a real PostgreSQL."""

from __future__ import annotations

from sandbox.pgcluster import PgCluster
from tests.helpers import run_verification, sample


def test_custom_sql_metrics(db: PgCluster) -> None:
    db.execute(
        "CREATE TABLE jobs (state text); INSERT INTO jobs VALUES ('queued'), ('queued'), ('failed')",
        "verify",
    )
    result = run_verification(
        db,
        custom=[
            {
                "name": "jobs",
                "help": "Jobs by state.",
                "sql": "SELECT state, count(*) AS value FROM jobs GROUP BY state",
                "labels": ["state"],
            },
            {"name": "broken", "help": "x", "sql": "SELECT 1 AS n"},
        ],
    )
    assert sample(result, "drwatch_custom_jobs", state="queued") == 2
    assert sample(result, "drwatch_custom_jobs", state="failed") == 1
    assert not result.up
    assert (
        "custom metric broken: the query returns no column(s) value (it returns n)"
        in result.summary
    )
    assert result.error_reasons == ("config",)


def test_custom_sql_cannot_write(db: PgCluster) -> None:
    db.execute("CREATE TABLE t (x int)", "verify")
    result = run_verification(
        db,
        custom=[
            {"name": "sneaky", "help": "x", "sql": "INSERT INTO t VALUES (1) RETURNING 1 AS value"}
        ],
    )
    assert not result.up
    assert "read-only transaction" in result.summary
    assert db.execute("SELECT count(*) FROM t", "verify")[0][0] == 0
