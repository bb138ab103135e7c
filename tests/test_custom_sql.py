"""Custom SQL metrics (verification.custom) against a real PostgreSQL."""

from __future__ import annotations

import pytest
import yaml

from sandbox.pgcluster import PgCluster
from tests.helpers import DSN, config_problems, make_config, run_verification, sample


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
    """Behind the parse-tree rules (which refuse both below), least privilege and the read-only
    transaction still hold: with allow_side_effects, neither writes."""
    db.execute("CREATE TABLE t (x int); CREATE SEQUENCE s", "verify")
    # Only a query can run inside drwatch's own SELECT: a statement that writes is not SQL there...
    insert = run_verification(
        db,
        custom=[{"name": "sneaky", "help": "x", "allow_side_effects": True,
                 "sql": "INSERT INTO t VALUES (1) RETURNING 1 AS value"}],
    )  # fmt: skip
    assert not insert.up and "custom metric sneaky: syntax error" in insert.summary
    # ... and a query that would write is stopped by the read-only transaction.
    writes = run_verification(
        db, custom=[{"name": "sneaky", "help": "x", "allow_side_effects": True,
                     "sql": "SELECT nextval('s') AS value"}],
    )  # fmt: skip
    assert not writes.up
    assert "cannot execute nextval() in a read-only transaction" in writes.summary
    assert db.execute("SELECT count(*) FROM t", "verify")[0][0] == 0
    assert db.execute("SELECT last_value FROM s", "verify")[0][0] == 1  # never called


def test_rows_are_capped_in_the_server_labels_bounded_and_repeats_refused(db: PgCluster) -> None:
    many = run_verification(
        db,
        custom=[
            {
                "name": "many",
                "help": "x",
                "sql": "SELECT g AS value, g::text AS id FROM generate_series(1, 1000000) g",
                "labels": ["id"],
            }
        ],
    )
    assert not many.up and "custom metric many: more than 1000 rows" in many.summary
    long = run_verification(
        db,
        custom=[{"name": "long", "help": "x", "sql": "SELECT 1 AS value, repeat('x', 10000000) AS doc", "labels": ["doc"]}],
    )  # fmt: skip
    assert "custom metric long: column doc holds a value over 256 characters" in long.summary
    repeated = run_verification(
        db,
        custom=[{"name": "twice", "help": "x", "sql": "SELECT 1 AS value, 'a' AS k UNION ALL SELECT 2, 'a'", "labels": ["k"]}],
    )  # fmt: skip
    assert "custom metric twice: two rows have the same labels {'k': 'a'}" in repeated.summary
    assert not any(s.name == "drwatch_custom_twice" for s in repeated.samples)


def test_a_verification_of_custom_items_only_says_what_it_measured(db: PgCluster) -> None:
    result = run_verification(db, custom=[{"name": "one", "help": "x", "sql": "SELECT 1 AS value"}])
    assert result.up and result.summary.startswith("custom one: 1 series (cycle ")


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'",
        "SELECT length(pg_read_file('/etc/passwd')) AS value",
        "SELECT lo_export(1, '/tmp/x') AS value",
        "SELECT 1 AS value FROM dblink('host=evil', 'SELECT 1') AS t(x int)",
        "SELECT 1 AS value; SELECT 2 AS value",
        "DO $$ BEGIN PERFORM 1; END $$",
    ],
)
def test_sql_with_side_effects_is_refused_unless_allowed(sql: str) -> None:
    query = {"name": "q", "help": "x", "sql": sql}
    target = {"name": "a", "postgres": {"dsn": DSN, "verification": {"custom": [query]}}}
    (problem,) = config_problems(yaml.safe_dump({"targets": [target]}))
    assert problem.startswith("targets[0].postgres.verification.custom[0]: custom metric q: ")
    assert "allow_side_effects: true" in problem
    query["allow_side_effects"] = True
    assert make_config([target]).config.targets[0].postgres is not None


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ('SELECT length("pg_read_file"(\'/etc/passwd\')) AS value', "pg_read_file() (line 1"),
        ("SELECT length(E'\\'' || pg_read_file('/etc/passwd')) AS value", "pg_read_file()"),
        ('SELECT count("pg_terminate_backend"(pid)) AS value FROM pg_stat_activity',
         "pg_terminate_backend()"),
        ("SELECT 1 AS value FROM pg_create_physical_replication_slot('x')",
         "pg_create_physical_replication_slot()"),
        ("SELECT 1 AS value FROM pg_catalog.pg_stat_reset_shared('bgwriter')",
         "pg_catalog.pg_stat_reset_shared()"),
        ("SELECT count(*) AS value FROM pg_class FOR UPDATE", "a locking clause"),
        ("WITH gone AS (DELETE FROM jobs RETURNING 1) SELECT count(*) AS value FROM gone",
         "a data-modifying WITH (DELETE)"),
        ("SELECT 1 AS value INTO copied", "SELECT INTO"),
        ("SELECT count(*) AS value FROM jobs\nWHERE my_check(id)", "my_check() (line 2, column 7)"),
        # A schema of the user's own with a function named like a built-in: not the built-in.
        ("SELECT evil.count(1) AS value", "evil.count() (line 1"),
        ('SELECT public."now"() AS value', "public.now()"),
    ],
)  # fmt: skip
def test_the_parse_tree_finds_what_a_text_scan_missed(sql: str, named: str) -> None:
    query = {"name": "q", "help": "x", "sql": sql}
    target = {"name": "a", "postgres": {"dsn": DSN, "verification": {"custom": [query]}}}
    (problem,) = config_problems(yaml.safe_dump({"targets": [target]}))
    assert named in problem, problem


def test_the_dbas_own_functions_are_named_in_config() -> None:
    query = {"name": "q", "help": "x", "sql": "SELECT count(*) AS value FROM jobs WHERE my_check(id)",
             "functions": ["my_check"]}  # fmt: skip
    make_config([{"name": "a", "postgres": {"dsn": DSN, "verification": {"custom": [query]}}}])
    qualified = {**query, "sql": "SELECT pg_catalog.count(*) AS value FROM jobs WHERE ops.my_check(id)",
                 "functions": ["ops.my_check"]}  # fmt: skip
    make_config([{"name": "a", "postgres": {"dsn": DSN, "verification": {"custom": [qualified]}}}])
    elsewhere = {**qualified, "sql": "SELECT count(*) AS value FROM jobs WHERE evil.my_check(id)"}
    target = {"name": "a", "postgres": {"dsn": DSN, "verification": {"custom": [elsewhere]}}}
    (problem,) = config_problems(yaml.safe_dump({"targets": [target]}))
    assert "evil.my_check()" in problem


def test_side_effect_words_in_strings_and_comments_are_not_code() -> None:
    query = {
        "name": "q",
        "help": "x",
        "sql": "SELECT 1 AS value, 'COPY x TO PROGRAM y; pg_read_file(z)' AS note -- lo_export(1)",
    }
    make_config([{"name": "a", "postgres": {"dsn": DSN, "verification": {"custom": [query]}}}])
