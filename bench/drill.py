"""A full_restore drill against a bare `pg_restore --jobs 2` into a fresh cluster, same dump.

    .venv/bin/python bench/drill.py [--rows 5000000]

Seeds `debates` (N rows over a year, indexed on created_at) and `debate_messages` (N/5), dumps
it with pg_dump -Fc, then, in the same run:
1. by hand: initdb a fresh cluster (as the drill does: fsync off, a Unix socket), start it,
   `pg_restore --jobs 2 --no-owner --no-privileges`, stop it;
2. drwatch's drill of the same dump: download, the same restore, then its checks (row counts
   against production, pg_amcheck), every phase timed.
Prints both times, the drill's phases and the bench process's peak memory growth.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.drills import full_restore
from exporter.drills.scratch import ThrowawayCluster
from sandbox.pgcluster import PgCluster
from tests.helpers import make_config


def seed(cluster: PgCluster, rows: int) -> None:
    cluster.execute("CREATE DATABASE app")
    cluster.execute(
        "CREATE TABLE debates (id bigserial PRIMARY KEY, title text NOT NULL, "
        "created_at timestamptz NOT NULL);"
        f"INSERT INTO debates (title, created_at) SELECT md5(g::text), "
        f"now() - make_interval(secs => g * 31536000.0 / {rows}) FROM generate_series(1, {rows}) g;"
        "CREATE INDEX ON debates (created_at);"
        "CREATE TABLE debate_messages (id bigserial PRIMARY KEY, debate_id bigint, body text);"
        f"INSERT INTO debate_messages (debate_id, body) SELECT g * 5, md5(g::text) "
        f"FROM generate_series(1, {rows // 5}) g;",
        "app",
    )


def by_hand(dump: Path, scratch_dir: Path) -> float:
    loaded = make_config(
        [{"name": "x", "drills": {"schedule": "0 3 * * 0", "scratch": {"user": "postgres",
                                                                        "dir": str(scratch_dir)}}}]
    )  # fmt: skip
    drills = loaded.config.targets[0].drills
    assert drills is not None
    started = time.monotonic()
    cluster = ThrowawayCluster(drills, scratch_dir, time.monotonic() + 3600)
    try:
        cluster.start()
        database = cluster.create_database()
        # The scratch superuser's password in the environment, as a person would give it.
        subprocess.run(
            [str(cluster.pg_bin / "pg_restore"), "--no-owner", "--no-privileges", "--jobs=2",
             "-h", str(cluster.socket_dir), "-U", "drwatch_drill", "-d", database, str(dump)],
            check=True, capture_output=True, env={**os.environ, "PGPASSWORD": cluster.password},
        )  # fmt: skip
    finally:
        cluster.close()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    production = PgCluster().init(None).start()
    work = Path(tempfile.mkdtemp(prefix="drwatch-bench-"))
    work.chmod(0o755)
    try:
        seed(production, args.rows)
        dump = production.dump("app", production.backups / "dumps")
        store = dump.parent
        hand = by_hand(dump, work)
        loaded = make_config(
            [
                {
                    "name": "app",
                    "postgres": {
                        "dsn": production.dsn("app"),
                        "verification": {
                            "freshness": [
                                {"table": "debates", "column": "created_at", "max_age": "1d"}
                            ]
                        },
                    },
                    "backups": {"store": f"file://{store}/"},
                    "drills": {
                        "schedule": "0 3 * * 0",
                        "timeout": "2h",
                        "scratch": {"user": "postgres", "dir": str(work)},
                        "full_restore": {"jobs": 2},
                    },
                }
            ],
            state_dir=str(work),
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        config = loaded.config
        result = full_restore.run(config, config.targets[0], time.monotonic() + 7200)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert result.ok, result.summary
        restore = result.phases["restore"]
        print(f"{args.rows:,} debates, dump {dump.stat().st_size / 1e6:.1f} MB")
        print(f"by hand: initdb, start, pg_restore --jobs 2, stop: {hand:.2f} s")
        print(
            "drill: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in result.phases.items())
            + f"; total (measured RTO) {result.duration_seconds:.2f} s"
        )
        print(f"restore phase against by hand: {(restore / hand - 1) * 100:+.1f}%")
        print(f"peak RSS growth of drwatch during the drill: {(after - before) / 1024:.1f} MB")
    finally:
        production.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
