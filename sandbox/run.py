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

import yaml

from core.config.loading import LoadedConfig, load_config
from core.durations import format_duration, parse_duration
from exporter.cli.main import DEFAULT_LISTEN_ADDRESS
from exporter.daemon import Daemon
from exporter.logs import setup_logging
from sandbox import alerting
from sandbox.estate import Estate
from sandbox.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aragora.yml"
TARGET = "aragora-prod"


def _listen_address() -> str:
    port = int(DEFAULT_LISTEN_ADDRESS.rsplit(":", 1)[1])
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()  # the default port is busy here: any free one will do
    return f"127.0.0.1:{port}"


def _banner(estate: Estate, base: str, env_file: Path, checks: int) -> str:
    standby, cache = estate.standby, estate.cache
    assert standby is not None and cache is not None and estate.seeded and estate.dump
    seeded, env = estate.seeded, estate.env()
    example = EXAMPLE.relative_to(ROOT)
    return f"""
drwatch is running {checks} checks against a sandbox PostgreSQL, as the least-privileged role
drwatch (pg_monitor, pg_signal_backend, SELECT on the three tables; README, Least privilege).
  status page    {base}/
  metrics        {base}/metrics
  readiness      {base}/-/ready
  postgres       {env["DATABASE_URL"]}
  standby        {standby.dsn()}  (synchronous streaming replica)
  backups        {env["BACKUP_STORE"].removeprefix("file://")}  (first dump {estate.dump.name})
  wal archive    {env["WAL_STORE"].removeprefix("file://")}
  cross-region   {env["REPLICA_STORE"].removeprefix("file://")}  (a copy of the dump)
  redis          {cache.url}  (RDB snapshots in {cache.dir})
  remediation    enabled, dry run: decisions in the log, nothing touched
  seed data      {seeded.debates} debates over 10 days with a {seeded.gap_hours:g}-hour gap,
                 {seeded.orphans} orphan debate_messages
  one-shot check (the daemon's checks, once):
                 env $(cat {env_file}) .venv/bin/drwatch check --config {example}
Ctrl-C stops drwatch and the sandbox."""


def _try_this(estate: Estate, loaded: LoadedConfig, paging: bool) -> str:
    config = loaded.config
    rpo = config.objective(config.target(TARGET), "pitr").rpo or 0.0
    superuser = estate.cluster.dsn("aragora")
    if paging:
        rules = alerting.ALERTS / "recovery.yml"
        hold = next(
            parse_duration(rule["for"])
            for group in yaml.safe_load(rules.read_text())["groups"]
            for rule in group["rules"]
            if rule["alert"] == "DrwatchRPOBreached"
        )
        wait = alerting.alertmanager_config(None, fast=False)["route"]["group_wait"]
        when = (
            f"DrwatchRPOBreached pages about {format_duration(rpo + hold + parse_duration(wait))}"
            f" after archiving breaks (PITR RPO {format_duration(rpo)} + the rule's for: "
            f"{format_duration(hold)} + Alertmanager's group_wait {wait})"
        )
    else:
        when = (
            f"wal_archiving turns WARNING at once and CRITICAL once the PITR exposure passes "
            f"its {format_duration(rpo)} objective (make run-alerting to see the page)"
        )
    return f"""
Try this:
  break archiving:  psql "{superuser}" \\
                      -c "ALTER SYSTEM SET archive_command = 'exit 1'" -c "SELECT pg_reload_conf()"
                    {when}
  mend it:          psql "{superuser}" -c "ALTER SYSTEM RESET archive_command" \\
                      -c "SELECT pg_reload_conf()"
  lose a segment:   rm "{estate.cluster.archive}"/$(ls "{estate.cluster.archive}" | head -1)
                    wal_archive turns CRITICAL on its next run, naming the missing segment
"""


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
        env = estate.env()
        os.environ.update(env)
        env_file = estate.cluster.root / "sandbox.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        setup_logging("info", "logfmt")
        loaded = load_config(EXAMPLE)
        address = _listen_address()
        daemon = Daemon(EXAMPLE, loaded, address)
        daemon.start()
        base = f"http://{address}"
        print(_banner(estate, base, env_file, len(daemon.current().jobs)), flush=True)
        if args.alerting:
            print("drwatch sandbox: starting prometheus and alertmanager ...", flush=True)
            (estate.cluster.root / "alerting").mkdir()
            alerts = alerting.start(estate.cluster.root / "alerting", daemon.http.port, fast=False)
            print(
                f"  prometheus     http://127.0.0.1:{alerts.prometheus_port}/alerts  (the shipped"
                f" rules)\n  alertmanager   http://127.0.0.1:{alerts.alertmanager_port}/  "
                "(alerts/alertmanager.example.yml)",
                flush=True,
            )
        print(_try_this(estate, loaded, paging=args.alerting), flush=True)
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
