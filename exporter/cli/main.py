"""The `drwatch` command: run, check, drill, remediate, healthcheck, config validate."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from core.durations import parse_duration
from exporter import __version__
from exporter.cli.load import load_or_report

DEFAULT_LISTEN_ADDRESS = ":9839"


def _seconds(value: str) -> float:
    """A duration on the command line (`50s`, `2m`), as the config takes them."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: a duration above zero")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drwatch", description="Proves, continuously, that databases can be recovered."
    )
    parser.add_argument("--version", action="version", version=f"drwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=DEFAULT_LISTEN_ADDRESS,
        help=f"[host]:port for /metrics and the status page (default {DEFAULT_LISTEN_ADDRESS})",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config",
        help="web config (exporter-toolkit): TLS, client certificates, basic auth",
    )
    run.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    run.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"]
    )
    run.add_argument(
        "--shard",
        type=int,
        default=0,
        help="this replica's shard, 0 to --total-shards - 1: it runs the targets hashed to it",
    )
    run.add_argument(
        "--total-shards", type=int, default=1, help="how many replicas share the targets"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that run the checks, at most one per target (default: one per core "
        "this process may use, by its CPU affinity and cgroup quota; 0: the daemon's own "
        "process runs them)",
    )

    check = sub.add_parser("check", help="run every check once; Nagios exit code")
    check.add_argument("--config", required=True)
    check.add_argument("--format", default="table", choices=["table", "json"])
    check.add_argument("--target", help="only this target")
    check.add_argument(
        "--timeout",
        type=_seconds,
        default=50.0,
        help="the whole run's deadline (default 50s, within Nagios' 60 s): a check still "
        "waiting then is CRITICAL, naming what it waits on",
    )
    check.add_argument(
        "--full-sweep",
        action="store_true",
        help="verification reads its tables in full (forgets what earlier runs kept)",
    )

    remediate = sub.add_parser(
        "remediate", help="show what remediation would do now; do it with --execute"
    )
    remediate.add_argument("--config", required=True)
    remediate.add_argument("--target", help="only this target")
    remediate.add_argument(
        "--execute",
        action="store_true",
        help="act (needs remediation.enabled: true; overrides dry_run)",
    )

    drill = sub.add_parser("drill", help="run the configured restore drills now, with a report")
    drill.add_argument("--config", required=True)
    drill.add_argument("--target", help="only this target")
    drill.add_argument(
        "--scenario",
        choices=[
            "full_restore", "pitr", "cross_region", "redis", "rds_pitr", "rds_snapshot",
            "elasticache", "failover",
        ],
        help="only this scenario (failover: RDS only, never scheduled, asks for confirmation)",
    )
    drill.add_argument("--format", default="table", choices=["table", "json"])
    drill.add_argument(
        "--yes-fail-over",
        metavar="INSTANCE",
        help="failover: the RDS instance's name, instead of typing it back",
    )

    report = sub.add_parser(
        "report", help="evidence report: drills, schedule, RTO and RPO from drwatch's records"
    )
    report.add_argument(
        "verify", nargs="?", choices=["verify"], help="verify FILE: check a signed report"
    )
    report.add_argument("file", nargs="?", help="verify: the attestation (.intoto.jsonl)")
    report.add_argument("--config", help="the config whose state_dir holds the records")
    report.add_argument("--since", default="90d", help="the period, back from now (e.g. 90d)")
    report.add_argument("--format", default="md", choices=["md", "html", "json"])
    report.add_argument("--output", "-o", help="a file instead of standard output")
    report.add_argument(
        "--sign", metavar="KEY", help="an Ed25519 private key (PEM): sign the JSON report"
    )
    report.add_argument("--key", help="verify: the Ed25519 public key (PEM)")
    report.add_argument("--report", help="verify: the report (default: FILE without its suffix)")

    health = sub.add_parser(
        "healthcheck", help="exit 0 if the daemon on this machine answers (container HEALTHCHECK)"
    )
    health.add_argument(
        "--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN_ADDRESS
    )

    sub.add_parser(
        "hash-password",
        help="a bcrypt hash for basic_auth_users (the password from stdin, or asked twice)",
    )

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    validate = config_sub.add_parser("validate", help="validate a config file")
    # The file as the other commands take it (--config), or as a plain argument.
    validate.add_argument("file", nargs="?")
    validate.add_argument("--config", dest="config_file", metavar="FILE")
    validate.add_argument(
        "--allow-missing-env",
        action="store_true",
        help="an unset ${VAR} is empty, not an error (validate in CI without the secrets)",
    )
    validate.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) on warnings: a config that runs no check",
    )
    return parser


def cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, within its cgroup's CPU quota (a
    container limited to 2 CPUs on a 64-core node sees 64 in its affinity alone)."""
    allowed = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return allowed
    if quota == "max":
        return allowed
    return max(1, min(allowed, math.ceil(int(quota) / int(period))))


def _workers(asked: int | None) -> int:
    if asked is None:
        return cores()
    if asked < 0:
        raise ValueError(f"--workers {asked}: must be 0 or more")
    return asked


def _run(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from core.sharding import Shard
    from exporter.daemon import Daemon
    from exporter.logs import setup_logging
    from exporter.web.server import parse_listen_address

    setup_logging(args.log_level, args.log_format)
    try:
        parse_listen_address(args.listen_address)
        shard = Shard(args.shard, args.total_shards)
        workers = _workers(args.workers)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    try:
        web_config = Path(args.web_config) if args.web_config else None
        daemon = Daemon(args.config, loaded, args.listen_address, shard, web_config, workers)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"--web.listen-address {args.listen_address}: {exc.strerror}", file=sys.stderr)
        return 1
    daemon.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `drwatch ... | head`: the reader left. Quiet, as a shell tool is (Python's own recipe:
        # stdout to /dev/null, so the interpreter's last flush does not fail again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "check":
        from exporter.cli.check import check

        return check(args.config, args.format, args.target, args.full_sweep, args.timeout)
    if args.command == "drill":
        from exporter.cli.drill import drill

        if args.scenario == "failover":
            from exporter.cli.failover import failover

            return failover(args.config, args.target, args.yes_fail_over)
        return drill(args.config, args.target, args.scenario, args.format)
    if args.command == "report":
        from exporter.cli.report import report, verify_report

        if args.verify:
            if not args.file:
                parser.error("report verify: the attestation FILE is missing")
            return verify_report(args.file, args.key, args.report)
        if not args.config:
            parser.error("report: --config is required")
        return report(args.config, args.since, args.format, args.output, args.sign)
    if args.command == "hash-password":
        from exporter.cli.hashpassword import hash_password

        return hash_password()
    if args.command == "healthcheck":
        from exporter.cli.healthcheck import healthcheck

        return healthcheck(args.listen_address)
    if args.command == "remediate":
        from exporter.cli.remediate import remediate

        return remediate(args.config, args.target, args.execute)
    from exporter.cli.validate import validate

    if (args.file is None) == (args.config_file is None):
        parser.error("config validate: give the config file once, as --config FILE or FILE")
    return validate(args.file or args.config_file, args.strict, args.allow_missing_env)
