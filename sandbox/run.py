"""`make run`: a local PostgreSQL archiving WAL into a local backup directory, the runbook's
schema with seed data (a deliberate 2-hour gap, a few orphans), a first backup, and the daemon
watching it all with examples/aragora.yml. Ctrl-C stops everything it started."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from exporter.cli import DEFAULT_LISTEN_ADDRESS
from exporter.config import load_config
from exporter.daemon import Daemon
from exporter.logs import setup_logging
from sandbox import alerting
from sandbox.pgcluster import ARCHIVE_COPY, PgCluster, free_port
from sandbox.redisserver import RedisServer
from sandbox.seed import seed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aragora.yml"
TRAFFIC_INTERVAL = 20.0  # a new debate this often, so freshness and archiving have work
SEGMENT_SWITCH_INTERVAL = 60.0  # stands in for archive_timeout on a quiet demo server


def _listen_address() -> str:
    port = int(DEFAULT_LISTEN_ADDRESS.rsplit(":", 1)[1])
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()  # the default port is busy here: any free one will do
    return f"127.0.0.1:{port}"


def _traffic(cluster: PgCluster, cache: RedisServer, stop: threading.Event) -> None:
    ticks = 0
    while not stop.wait(TRAFFIC_INTERVAL):
        ticks += 1
        try:
            cluster.execute("INSERT INTO debates (title) VALUES ('live debate')", "aragora")
            cache.client().incr("sandbox:debates")
            if ticks * TRAFFIC_INTERVAL % SEGMENT_SWITCH_INTERVAL == 0:
                cluster.execute("SELECT pg_switch_wal()")
        except Exception as exc:  # the demo goes on; drwatch will show what broke
            print(f"sandbox traffic: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--alerting",
        action="store_true",
        help="also start prometheus (with the shipped rules) and alertmanager (example routing)",
    )
    args = parser.parse_args()
    print("drwatch sandbox: starting PostgreSQL ...", flush=True)
    cluster = PgCluster().init(ARCHIVE_COPY, archive_timeout="60").start()
    stop = threading.Event()
    daemon: Daemon | None = None
    cache: RedisServer | None = None
    standby: PgCluster | None = None
    alerts: alerting.Alerting | None = None
    try:
        # A synchronous standby, as the runbook's "Primary failover, RPO 0" assumes.
        standby = cluster.create_standby().start()
        cluster.set(synchronous_standby_names="*")
        print("drwatch sandbox: starting Redis ...", flush=True)
        cache = RedisServer(cluster.root / "redis")
        cache.dir = cluster.backups / "redis"  # RDB snapshots land in the backup directory
        cache.start(save="60 1")
        cache.client().set("sandbox:started", time.time())
        cache.client().save()
        cluster.execute("CREATE DATABASE aragora")
        with cluster.connect("aragora") as conn:
            seeded = seed(conn)
        dump = cluster.dump("aragora", cluster.backups / "postgres")
        cluster.execute("SELECT pg_switch_wal()")
        os.environ["DATABASE_URL"] = cluster.dsn("aragora")
        os.environ["BACKUP_STORE"] = f"file://{cluster.backups}/postgres/"
        os.environ["WAL_STORE"] = f"file://{cluster.archive}/"
        os.environ["DRWATCH_STATE_DIR"] = str(cluster.root / "state")
        os.environ["REDIS_URL"] = cache.url
        os.environ["REDIS_SNAPSHOT_STORE"] = f"file://{cache.dir}/"
        setup_logging("info", "logfmt")
        loaded = load_config(EXAMPLE)
        address = _listen_address()
        daemon = Daemon(EXAMPLE, loaded, address)
        daemon.start()
        base = f"http://{address}"
        example = EXAMPLE.relative_to(ROOT)
        print(
            f"""
drwatch is running against a sandbox PostgreSQL ({cluster.dsn("aragora")}).
  status page    {base}/
  metrics        {base}/metrics
  readiness      {base}/-/ready
  backups        {cluster.backups}  (WAL archive in wal/, first dump {dump.name})
  standby        {standby.dsn()}  (synchronous streaming replica)
  redis          {cache.url}  (RDB snapshots in {cache.dir})
  seed data      {seeded.debates} debates over 10 days with a {seeded.gap_hours:g}-hour gap,
                 {seeded.orphans} orphan debate_messages
  one-shot check DATABASE_URL={cluster.dsn("aragora")} \\
                   .venv/bin/drwatch check --config {example}
Ctrl-C stops drwatch and the sandbox.""",
            flush=True,
        )
        if args.alerting:
            print("drwatch sandbox: starting prometheus and alertmanager ...", flush=True)
            (cluster.root / "alerting").mkdir()
            alerts = alerting.start(cluster.root / "alerting", daemon.http.port, fast=False)
            print(
                f"""
  prometheus     http://127.0.0.1:{alerts.prometheus_port}/alerts  (the shipped rules)
  alertmanager   http://127.0.0.1:{alerts.alertmanager_port}/  (alerts/alertmanager.example.yml)
  break archiving and watch the page: psql "{cluster.dsn("aragora")}" \\
                   -c "ALTER SYSTEM SET archive_command = 'exit 1'" -c "SELECT pg_reload_conf()"
""",
                flush=True,
            )
        threading.Thread(target=_traffic, args=(cluster, cache, stop), daemon=True).start()
        # Handlers, not KeyboardInterrupt: a shell's background job inherits SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()
        if alerts is not None:
            alerts.stop()
        if daemon is not None:
            daemon.stop()
        if cache is not None:
            cache.destroy()
        if standby is not None:
            standby.destroy()
        cluster.destroy()
        print("drwatch sandbox: stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
