"""Remediation pass costs against a real PostgreSQL with many idle sessions.

    .venv/bin/python bench/remediation.py [--sessions 300]

Opens N idle client sessions (max_connections N + 50), ages them past `idle_for`, then times:
1. a dry-run pass: privileges, usage, listing and filtering every candidate, N audit lines;
2. an executing pass terminating all N, each with its own re-verifying statement;
and the leader-lock check every pass starts with (a held lock: one `SELECT 1`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config.loading import parse_config
from exporter.remediation.engine import RemediationEngine
from exporter.remediation.postgres import LeaderLock
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=300)
    args = parser.parse_args()
    n = args.sessions
    logging.getLogger("drwatch.remediation").setLevel(logging.WARNING)  # N lines per pass
    cluster = PgCluster().init(None, max_connections=str(n + 50)).start()
    conns: list[psycopg.Connection] = []  # type: ignore[type-arg]
    try:
        cluster.execute(
            "CREATE ROLE drwatch LOGIN; GRANT pg_monitor, pg_signal_backend TO drwatch;"
            "CREATE ROLE app LOGIN"
        )
        conns = [
            psycopg.connect(cluster.dsn(user="app"), application_name="web", autocommit=True)
            for _ in range(n)
        ]
        wait_until(
            lambda: (
                cluster.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' "
                    "AND state_change < now() - interval '1.5 seconds'"
                )[0][0]
                == n
            ),
            60,
        )
        doc = {
            "state_dir": tempfile.mkdtemp(),
            "targets": [{"name": "db", "postgres": {"dsn": cluster.dsn(user="drwatch")}}],
            "remediation": {
                "enabled": True,
                "actions": {
                    "terminate_idle_connections": {
                        "always": True,
                        "idle_for": "1s",
                        "max_per_run": n,
                        "cooldown": "0s",
                    }
                },
            },
        }
        loaded = parse_config(yaml.safe_dump(doc), env={})
        target = loaded.config.targets[0]
        results = {"connections": CheckHarness(loaded).run("connections")}
        engine = RemediationEngine()
        engine.run(loaded.config, target, results)  # takes the lock, warms the connection path
        start = time.perf_counter()
        dry = engine.run(loaded.config, target, results)
        dry_s = time.perf_counter() - start
        assert sum(d.outcome == "dry_run" for d in dry) == n
        start = time.perf_counter()
        done = engine.run(loaded.config, target, results, execute=True)
        exec_s = time.perf_counter() - start
        assert sum(d.outcome == "executed" for d in done) == n
        engine.close()

        assert target.postgres is not None
        lock = LeaderLock(target.postgres, 42)
        lock.hold()
        start = time.perf_counter()
        for _ in range(100):
            lock.hold()
        held_ms = (time.perf_counter() - start) * 10
        lock.release()
    finally:
        for conn in conns:
            conn.pgconn.finish()
        cluster.destroy()
    print(f"sessions: {n}")
    print(f"dry-run pass ({n} decisions):      {dry_s * 1000:.0f} ms")
    print(
        f"executing pass ({n} terminated):   {exec_s * 1000:.0f} ms ({exec_s / n * 1000:.2f} ms each)"
    )
    print(f"leader check with the lock held:  {held_ms:.2f} ms")


if __name__ == "__main__":
    main()
