"""What a verification cycle costs as `debates` grows: today's full cycle against the
incremental one (and its share of the daily full sweep), and what the primary runs when a
standby is configured.

    .venv/bin/python bench/verification_cost.py [--sizes 1000000 5000000 20000000]

One PostgreSQL 15 primary with pg_stat_statements and a streaming standby. For each size:
`debates` (ids in time order over a year, indexed on created_at) and one message per five
debates, a few orphans; the verification of bench/verification_queries.py (freshness, 10 daily
counts, gaps over 7 days, orphans). Timed through the real check (connection included):
- full: every run with nothing kept (what every run cost before issue 16), median of 3;
- incremental: a minute of traffic (100 debates, 20 messages) between runs, median of 5
  after the first (a sweep); amortised adds a 60 s interval's share of the daily full sweep;
- standby: the same with verification.dsn on the standby; the primary's pg_stat_statements
  counted over those runs (statements on debates or debate_messages).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.verification_queries import load
from core.config.loading import parse_config
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness

STEP = 1_000_000  # rows per INSERT while loading
INTERVAL = 60.0  # the verification's default interval
SWEEP = 86400.0  # full_sweep_interval's default
VERIFICATION = {
    "timeout": "10m",
    "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}],
    "daily_counts": [{"table": "debates", "column": "created_at", "days": 10}],
    "gaps": [{"table": "debates", "column": "created_at", "threshold": "1h", "lookback": "7d"}],
    "orphans": [
        {"table": "debate_messages", "column": "debate_id", "parent_table": "debates",
         "parent_column": "id"}
    ],
}  # fmt: skip


def harness(dsn: str, state: Path, standby_dsn: str | None = None) -> CheckHarness:
    verification: dict[str, Any] = {**VERIFICATION, **({"dsn": standby_dsn} if standby_dsn else {})}
    pg = {"dsn": dsn, "statement_timeout": "5m", "timeout": "10m", "verification": verification}
    text = yaml.safe_dump({"targets": [{"name": "bench", "postgres": pg}], "state_dir": str(state)})
    return CheckHarness(parse_config(text, env={}))


ITEMS: dict[str, float] = {}  # the last run's time per item


def run(h: CheckHarness) -> float:
    result = h.run("verification")
    assert result.up, result.summary
    ITEMS.clear()
    ITEMS.update(
        {s.values[0]: s.value for s in result.samples
         if s.name == "drwatch_verification_item_duration_seconds"}
    )  # fmt: skip
    return result.duration_seconds


def traffic(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    """A minute of writes at 50M debates a year: 100 debates, 20 messages."""
    conn.execute(
        "INSERT INTO debates (id, title, created_at) "
        "SELECT max_id + i, 'new', now() FROM (SELECT max(id) AS max_id FROM debates) m, "
        "generate_series(1, 100) AS i"
    )
    conn.execute(
        "INSERT INTO debate_messages (debate_id, body) "
        "SELECT id, 'm' FROM debates ORDER BY id DESC LIMIT 20"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    args = parser.parse_args()
    primary = (
        PgCluster()
        .init(None, shared_preload_libraries="'pg_stat_statements'", max_wal_size="'4GB'")
        .start()
    )
    standby: PgCluster | None = None
    work = Path(tempfile.mkdtemp(prefix="drwatch-bench-"))
    try:
        primary.execute("CREATE DATABASE bench")
        primary.execute("CREATE EXTENSION pg_stat_statements", "bench")
        with primary.connect("bench") as conn:
            conn.autocommit = True
            conn.execute(
                "CREATE TABLE debates (id bigint PRIMARY KEY, title text, "
                "created_at timestamptz NOT NULL);"
                "CREATE INDEX debates_created_at ON debates (created_at);"
                "CREATE TABLE debate_messages (id bigserial PRIMARY KEY, debate_id bigint, body text)"
            )
            standby = primary.create_standby().start()
            dsn, standby_dsn = primary.dsn("bench"), standby.dsn("bench")
            print("| debates | full cycle | incremental cycle | amortised (+ sweep share) "
                  "| on the standby | primary statements with a standby |")  # fmt: skip
            print("|---:|---:|---:|---:|---:|---:|")
            for size in sorted(args.sizes):
                # Each size its own year of data ending now, as production's would be.
                conn.execute("TRUNCATE debates, debate_messages")
                for start in range(0, size, STEP):
                    load(conn, start, min(STEP, size - start), size)
                conn.execute("VACUUM ANALYZE debates")
                conn.execute("VACUUM ANALYZE debate_messages")
                full = statistics.median(
                    run(harness(dsn, work / f"full-{size}-{i}")) for i in range(3)
                )
                kept = harness(dsn, work / f"kept-{size}")
                sweep = run(kept)
                incremental = []
                for _ in range(5):
                    traffic(conn)
                    incremental.append(run(kept))
                incr = statistics.median(incremental)
                items = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in ITEMS.items())
                print(f"<!-- {size:,}: incremental items: {items} -->", flush=True)
                amortised = incr + sweep * INTERVAL / SWEEP
                sent = primary.execute("SELECT pg_current_wal_lsn()::text")[0][0]
                wait_until(
                    lambda sent=sent: standby.execute(  # type: ignore[union-attr]
                        f"SELECT pg_last_wal_replay_lsn() >= '{sent}'"
                    )[0][0],
                    600,
                    what="standby caught up",
                )
                on_standby = harness(dsn, work / f"standby-{size}", standby_dsn)
                run(on_standby)  # its first run is a sweep
                primary.execute("SELECT pg_stat_statements_reset()", "bench")
                standby_times = [run(on_standby) for _ in range(3)]
                statements = primary.execute(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                    "WHERE query ILIKE '%debate%'",
                    "bench",
                )[0][0]
                print(
                    f"| {size:,} | {full * 1000:,.0f} ms | {incr * 1000:,.1f} ms "
                    f"| {amortised * 1000:,.1f} ms | {statistics.median(standby_times) * 1000:,.1f} ms "
                    f"| {statements} |",
                    flush=True,
                )
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
