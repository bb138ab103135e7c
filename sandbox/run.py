"""`make run`: a local PostgreSQL archiving WAL into a local backup directory, the runbook's
schema with seed data (a deliberate 2-hour gap, a few orphans), a first backup, and the daemon
watching it all with examples/aragora.yml. Ctrl-C stops everything it started."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
from pathlib import Path

from core.config.loading import load_config
from exporter.cli.main import DEFAULT_LISTEN_ADDRESS
from exporter.daemon import Daemon
from exporter.logs import setup_logging
from sandbox import alerting
from sandbox.estate import Estate
from sandbox.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aragora.yml"


def _listen_address() -> str:
    port = int(DEFAULT_LISTEN_ADDRESS.rsplit(":", 1)[1])
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()  # the default port is busy here: any free one will do
    return f"127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--alerting",
        action="store_true",
        help="also start prometheus (with the shipped rules) and alertmanager (example routing)",
    )
    args = parser.parse_args()
    print("drwatch sandbox: starting PostgreSQL, its standby and Redis ...", flush=True)
    stop = threading.Event()
    daemon: Daemon | None = None
    alerts: alerting.Alerting | None = None
    estate = Estate().start()
    try:
        cluster, standby, cache = estate.cluster, estate.standby, estate.cache
        assert standby is not None and cache is not None and estate.seeded and estate.dump
        seeded, dump = estate.seeded, estate.dump
        os.environ.update(estate.env())
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
  backups        {cluster.backups}  (WAL archive in wal/, first dump {dump.name},
                 its cross-region copy in replica/)
  remediation    enabled, dry run: decisions in the log, nothing touched
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
        estate.start_traffic()
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
        estate.stop()
        print("drwatch sandbox: stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
