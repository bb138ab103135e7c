"""The runbook's gap and foreign-key queries against drwatch's, on the same data in the same run,
and drwatch's whole verification cycle as `debates` grows from 1M to 5M rows.

    make bench          # or: .venv/bin/python bench/verification_queries.py [--max-rows 5000000]

Prints markdown tables; bench/RESULTS.md holds the figures of the last recorded run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config.loading import parse_config
from sandbox.pgcluster import PgCluster
from tests.helpers import CheckHarness

RUNBOOK_TIMEOUT_S = 300  # the runbook's queries are cancelled past this
SPAN_DAYS = 365
STEP = 1_000_000

RUNBOOK_GAPS = """
SELECT d1.created_at AS gap_start, d2.created_at AS gap_end, d2.created_at - d1.created_at
FROM debates d1
JOIN debates d2 ON d2.id = (SELECT MIN(id) FROM debates WHERE id > d1.id)
WHERE d2.created_at - d1.created_at > INTERVAL '1 hour'
"""
RUNBOOK_FK = """
SELECT COUNT(*) FROM debate_messages WHERE debate_id NOT IN (SELECT id FROM debates)
"""


def load(conn: psycopg.Connection, start: int, count: int, total_target: int) -> None:  # type: ignore[type-arg]
    # Rows spread evenly over the last year (ids in time order, as the runbook assumes), with
    # two 3-hour holes; one message per five debates, a few pointing nowhere.
    conn.execute(
        """
        INSERT INTO debates (id, title, created_at)
        SELECT i, 'debate', now() - make_interval(secs => %(span)s * (1 - i::float8 / %(total)s))
        FROM generate_series(%(start)s + 1, %(start)s + %(count)s) AS i
        """,
        {"span": SPAN_DAYS * 86400, "total": total_target, "start": start, "count": count},
    )
    conn.execute(
        "INSERT INTO debate_messages (debate_id, body) "
        "SELECT i, 'm' FROM generate_series(%(start)s + 1, %(start)s + %(count)s, 5) AS i",
        {"start": start, "count": count},
    )


def timed(
    conn: psycopg.Connection, sql: str, params: dict | None = None, repeat: int = 1
) -> tuple[float | None, object]:  # type: ignore[type-arg]
    times = []
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            result = conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
        except psycopg.errors.QueryCanceled:
            conn.rollback()
            return None, None
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _check_time(dsn: str, kind: str, item: dict[str, str]) -> float:
    """Median time of drwatch's own query for one verification item, through the real check."""
    verification = {kind: [item], "full_sweep_interval": "1ms"}  # the full query, every run
    pg = {"dsn": dsn, "statement_timeout": "5m", "timeout": "10m", "verification": verification}
    harness = CheckHarness(
        parse_config(yaml.safe_dump({"targets": [{"name": "b", "postgres": pg}]}), env={})
    )
    durations = []
    for _ in range(3):
        result = harness.run("verification")
        assert result.up, result.summary
        durations.append(result.duration_seconds)
    return statistics.median(durations)


def ratio(runbook: float | None, drwatch: float) -> str:
    return (
        f"> {RUNBOOK_TIMEOUT_S / drwatch:,.0f}×"
        if runbook is None
        else f"{runbook / drwatch:,.1f}×"
    )


def fmt(seconds: float | None) -> str:
    return (
        f"> {RUNBOOK_TIMEOUT_S} s (cancelled)" if seconds is None else f"{seconds * 1000:,.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-rows", type=int, default=5_000_000)
    args = parser.parse_args()
    cluster = PgCluster().init(None).start()
    try:
        cluster.execute("CREATE DATABASE bench")
        with cluster.connect("bench") as conn:
            conn.execute(
                "CREATE TABLE debates (id bigint PRIMARY KEY, title text, created_at timestamptz NOT NULL);"
                "CREATE INDEX debates_created_at ON debates (created_at);"
                "CREATE TABLE debate_messages (id bigserial PRIMARY KEY, debate_id bigint, body text)"
            )
            config = parse_config(
                f"""
targets:
  - name: bench
    postgres:
      dsn: "{cluster.dsn("bench")}"
      statement_timeout: 5m
      timeout: 10m
      verification:
        timeout: 10m
        full_sweep_interval: 1ms   # every run in full: this table is the full cycle's cost
        freshness: [{{table: debates, column: created_at, max_age: 1h}}]
        daily_counts: [{{table: debates, column: created_at, days: 10}}]
        gaps: [{{table: debates, column: created_at, threshold: 1h, lookback: 7d}}]
        orphans: [{{table: debate_messages, column: debate_id, parent_table: debates, parent_column: id}}]
""",
                env={},
            )
            harness = CheckHarness(config)
            print("| debates rows | drwatch verification cycle (median of 5) |")
            print("|---:|---:|")
            loaded = 0
            while loaded < args.max_rows:
                count = min(STEP, args.max_rows - loaded)
                load(conn, loaded, count, args.max_rows)
                loaded += count
                conn.execute("VACUUM ANALYZE debates")
                conn.execute("VACUUM ANALYZE debate_messages")
                cycle = []
                for _ in range(5):
                    result = harness.run("verification")
                    assert result.up, result.summary
                    cycle.append(result.duration_seconds)
                print(f"| {loaded:,} | {statistics.median(cycle) * 1000:,.0f} ms |", flush=True)

            conn.execute(f"SET statement_timeout = '{RUNBOOK_TIMEOUT_S}s'")
            dsn = cluster.dsn("bench")
            gaps_7d = _check_time(
                dsn,
                "gaps",
                {"table": "debates", "column": "created_at", "threshold": "1h", "lookback": "7d"},
            )
            gaps_all = _check_time(
                dsn,
                "gaps",
                {"table": "debates", "column": "created_at", "threshold": "1h", "lookback": "400d"},
            )
            orphans = _check_time(
                dsn,
                "orphans",
                {
                    "table": "debate_messages",
                    "column": "debate_id",
                    "parent_table": "debates",
                    "parent_column": "id",
                },
            )
            runbook_gaps, _ = timed(conn, RUNBOOK_GAPS)
            runbook_fk, _ = timed(conn, RUNBOOK_FK)
            print(f"\n| query on {loaded:,} debates | time | runbook / drwatch, same scope |")
            print("|---|---:|---:|")
            print(
                f"| gaps, runbook (correlated MIN(id) per row, whole table) | {fmt(runbook_gaps)} | {ratio(runbook_gaps, gaps_all)} |"
            )
            print(
                f"| gaps, drwatch (lag() over created_at, whole table) | {fmt(gaps_all)} | 1.0× |"
            )
            print(f"| gaps, drwatch as configured (7-day lookback) | {fmt(gaps_7d)} | — |")
            print(
                f"| orphans, runbook (NOT IN) | {fmt(runbook_fk)} | {ratio(runbook_fk, orphans)} |"
            )
            print(f"| orphans, drwatch (NOT EXISTS) | {fmt(orphans)} | 1.0× |")
            settings = conn.execute(
                "SELECT current_setting('work_mem'), current_setting('shared_buffers')"
            ).fetchone()
            print(f"\nwork_mem={settings[0]}, shared_buffers={settings[1]} (PostgreSQL defaults)")
    finally:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
