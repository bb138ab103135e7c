"""The daemon as users run it: a process, a real PostgreSQL, HTTP, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.registry import REGISTRY
from sandbox.pgcluster import PgCluster, wait_until
from sandbox.redisserver import RedisServer
from tests.daemon import DaemonProcess
from tests.helpers import (
    AWS,
    aws_services,
    descendants,
    drwatch,
    every_section,
    serve,
    single_object_s3,
    write_config,
    write_keys,
)

CHECKS = ("wal_archiving", "replication", "connections")


def _config(path: Path, cluster: PgCluster, objectives: object = None, **pg: object) -> Path:
    target = {
        "name": "db",
        "postgres": {"dsn": cluster.dsn(), "interval": "1s", "timeout": "2s", **pg},
    }
    if objectives:
        target["objectives"] = objectives
    return write_config(path, [target])


@pytest.fixture
def daemon(cluster: PgCluster, tmp_path: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(_config(tmp_path / "drwatch.yml", cluster), tmp_path, workers=None)
    try:
        yield d
    finally:
        d.stop()


def _all_up(daemon: DaemonProcess, value: float) -> bool:
    return all(daemon.value("drwatch_check_up", target="db", check=c) == value for c in CHECKS)


def test_every_section_at_once_is_up_and_promtool_clean(
    cluster: PgCluster, redis_server: RedisServer, moto_endpoint: str, tmp_path: Path
) -> None:
    """Every section and every check of the registry on one target, against real services."""
    name = f"every-{uuid.uuid4().hex[:6]}"
    aws_services(moto_endpoint, name)
    cluster.dump("postgres", cluster.backups / "dumps")
    cluster.tar_base_backup(cluster.backups / "base" / "monday")
    cluster.execute("SELECT pg_switch_wal()")
    redis_server.start(save="3600 1")
    write_keys(redis_server)
    redis_server.client().save()
    target = every_section(
        "db",
        cluster.dsn(),
        cluster.backups / "dumps",
        cluster.archive,
        redis_server.url,
        redis_server.dir,
        name,
        cluster.backups / "base",
        interval="1s",
        timeout="2s",
    )
    config = write_config(
        tmp_path / "all.yml",
        [target],
        aws={**AWS, "endpoint_url": moto_endpoint},
        state_dir=str(tmp_path / "state"),
    )
    daemon = DaemonProcess(config, tmp_path, workers=None)
    try:
        _promtool_clean(daemon)
        up = {
            labels["check"]: value
            for (metric, label_pairs), value in daemon.samples().items()
            if metric == "drwatch_check_up" and (labels := dict(label_pairs))["target"] == "db"
        }
        assert set(up) == {check.name for check in REGISTRY}, "a configured check is missing"
        assert all(value == 1 for value in up.values()), (up, daemon.get("/")[1])
        for section in ("postgres", "backups", "rds", "redis"):
            assert daemon.value("drwatch_config_section_enabled", target="db", section=section) == 1
    finally:
        daemon.stop()


def _promtool_clean(daemon: DaemonProcess) -> None:
    wait_until(lambda: daemon.get("/-/ready")[0] == 200, 30, what="ready")
    # The replica check sees verified backups once the backups check has read one.
    wait_until(
        lambda: (
            daemon.value("drwatch_rpo_exposure_seconds", target="db", scenario="cross_region")
            is not None
        ),
        30,
        what="cross_region measured",
    )
    text = daemon.metrics_text()
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", (
        proc.stdout + proc.stderr
    )
    assert daemon.value("drwatch_rpo_objective_seconds", target="db", scenario="pitr") == 300
    assert daemon.value("drwatch_rto_objective_seconds", target="db", scenario="pitr") == 1800
    assert daemon.value("drwatch_rpo_exposure_seconds", target="db", scenario="pitr") is not None
    assert daemon.value("drwatch_config_last_reload_successful") == 1
    assert 'drwatch_build_info{python_version="' in text
    for scenario in ("pitr", "full_restore", "cross_region", "primary_failover", "redis"):
        assert (
            daemon.value("drwatch_rpo_exposure_seconds", target="db", scenario=scenario) is not None
        ), (scenario, daemon.get("/")[1])
    assert daemon.value("drwatch_backup_newest_verified", target="db") == 1
    status, page = daemon.get("/")
    assert status == 200 and "wal_archiving" in page and 'href="/metrics"' in page


def test_hung_postgres_marks_checks_down_while_metrics_keep_answering(
    daemon: DaemonProcess, cluster: PgCluster
) -> None:
    wait_until(lambda: _all_up(daemon, 1), 30, what="checks up")
    cluster.signal_all(signal.SIGSTOP)
    try:
        # interval 1 s, deadline 2 s: down within a few seconds, each scrape answered at once.
        wait_until(lambda: _all_up(daemon, 0), 15, interval=0.2, what="checks down")
        assert (
            daemon.value(
                "drwatch_check_errors_total", target="db", check="connections", reason="timeout"
            )
            >= 1
        )
        assert daemon.value("drwatch_rpo_exposure_seconds", target="db", scenario="pitr") is None
        for _ in range(5):
            status, _ = daemon.get("/metrics", timeout=1.0)
            assert status == 200
        _, page = daemon.get("/")
        assert "timed out after 2 s" in page or "previous run still stuck" in page
    finally:
        cluster.signal_all(signal.SIGCONT)
    wait_until(lambda: _all_up(daemon, 1), 30, what="recovered after SIGCONT")


def test_postgres_down_then_restarted(daemon: DaemonProcess, cluster: PgCluster) -> None:
    wait_until(lambda: _all_up(daemon, 1), 30, what="checks up")
    cluster.stop("immediate")
    wait_until(lambda: _all_up(daemon, 0), 15, what="checks down")
    assert (
        daemon.value(
            "drwatch_check_errors_total", target="db", check="wal_archiving", reason="connect"
        )
        >= 1
    )
    _, page = daemon.get("/")
    assert "cannot connect" in page
    cluster.start()
    wait_until(lambda: _all_up(daemon, 1), 30, what="recovered after restart")
    # One structured line per transition, each way.
    changes = [
        (line["old_status"], line["new_status"])
        for line in map(json.loads, filter(lambda s: s.startswith("{"), daemon.log().splitlines()))
        if line["msg"] == "check status changed" and line["check"] == "connections"
    ]
    assert changes == [("OK", "CRITICAL"), ("CRITICAL", "OK")], changes


def test_a_problem_present_at_start_is_logged_with_its_summary(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """No transition ever happens for a check that is CRITICAL from its first run (an empty
    dump store here): the journal still has a line about it, with the reason; an OK first run
    says nothing."""
    empty = tmp_path / "dumps"
    empty.mkdir()
    target = {"name": "db", "postgres": {"dsn": cluster.dsn(), "interval": "1s"},
              "backups": {"store": f"file://{empty}/", "interval": "1s"}}  # fmt: skip
    daemon = DaemonProcess(write_config(tmp_path / "drwatch.yml", [target]), tmp_path, workers=None)

    def first_runs() -> list[dict[str, object]]:
        lines = map(json.loads, filter(lambda s: s.startswith("{"), daemon.log().splitlines()))
        return [line for line in lines if line["msg"] == "check not OK at its first run"]

    try:
        logged = wait_until(
            lambda: [line for line in first_runs() if line["check"] == "backups"], 30,
            what="the first-run problem logged",
        )  # fmt: skip
        (line,) = logged
        assert line["level"] == "warning" and line["new_status"] == "CRITICAL"
        assert str(empty) in str(line["summary"])
        assert "connections" not in {line["check"] for line in first_runs()}
        lines = map(json.loads, filter(lambda s: s.startswith("{"), daemon.log().splitlines()))
        started = next(line for line in lines if line["msg"] == "drwatch started")
        assert (started["tls"], started["basic_auth"]) == (False, False)  # plain HTTP, said so
    finally:
        daemon.stop()


def test_sighup_rejects_a_bad_config_and_applies_a_good_one(
    daemon: DaemonProcess, cluster: PgCluster, tmp_path: Path
) -> None:
    wait_until(lambda: daemon.get("/-/ready")[0] == 200, 30, what="ready")
    config = tmp_path / "drwatch.yml"
    good = config.read_text()
    config.write_text(good.replace("interval: 1s", "interval: soon"))
    daemon.signal(signal.SIGHUP)
    wait_until(
        lambda: daemon.value("drwatch_config_last_reload_successful") == 0,
        15,
        what="reload rejected",
    )
    assert "targets[0].postgres.interval" in daemon.log()
    assert (
        daemon.value("drwatch_check_up", target="db", check="wal_archiving") == 1
    )  # old config runs on

    assert daemon.value("drwatch_rpo_objective_seconds", target="db", scenario="pitr") == 300
    _config(config, cluster, objectives={"pitr": {"rpo": "2m"}}, connections={"enabled": False})
    daemon.signal(signal.SIGHUP)
    wait_until(
        lambda: daemon.value("drwatch_config_last_reload_successful") == 1, 15, what="reloaded"
    )
    # The objective the paging rule compares against follows the config: no rule edit needed
    # (alerts/tests/recovery.test.yml shows the same rule paging on either objective).
    assert daemon.value("drwatch_rpo_objective_seconds", target="db", scenario="pitr") == 120
    # A check that is no longer configured disappears from /metrics instead of going stale.
    assert daemon.value("drwatch_check_up", target="db", check="connections") is None
    assert daemon.value("drwatch_pg_max_connections", target="db") is None
    assert daemon.value("drwatch_check_up", target="db", check="wal_archiving") is not None


def test_sigterm_stops_cleanly(daemon: DaemonProcess) -> None:
    wait_until(lambda: daemon.get("/-/ready")[0] == 200, 30, what="ready")
    assert daemon.stop() == 0
    assert '"drwatch stopped"' in daemon.log()


def test_dsn_password_never_appears_anywhere(cluster: PgCluster, tmp_path: Path) -> None:
    secret = "Sup3r-s3cret-pa55"
    cluster.execute("CREATE ROLE app LOGIN PASSWORD 'the-right-one'; GRANT pg_monitor TO app")
    cluster.require_password("app")
    dsn = f"postgresql://app:{secret}@127.0.0.1:{cluster.port}/postgres"
    config = write_config(
        tmp_path / "c.yml", [{"name": "db", "postgres": {"dsn": dsn, "interval": "1s"}}]
    )
    d = DaemonProcess(config, tmp_path, workers=None)
    try:
        wait_until(
            lambda: d.value("drwatch_check_up", target="db", check="connections") == 0,
            30,
            what="down",
        )
        texts = [d.metrics_text(), d.get("/")[1], d.log()]
        assert "password authentication failed" in d.get("/")[1]
    finally:
        d.stop()
    texts.append(d.log())
    check = drwatch("check", "--config", str(config), "--format", "json")
    assert check.returncode == 2  # the database refuses drwatch: CRITICAL
    texts += [check.stdout, check.stderr]
    broken = tmp_path / "broken.yml"
    broken.write_text(
        config.read_text().replace(f"{cluster.port}/postgres", "notaport/postgres x=y")
    )
    validate = drwatch("config", "validate", str(broken))
    assert validate.returncode == 1 and "targets[0].postgres.dsn" in validate.stderr
    texts += [validate.stdout, validate.stderr]
    for text in texts:
        assert secret not in text


def test_sighup_with_a_malformed_file_is_a_listed_problem_never_a_crash(
    daemon: DaemonProcess, cluster: PgCluster, tmp_path: Path
) -> None:
    wait_until(lambda: daemon.get("/-/ready")[0] == 200, 30, what="ready")
    config = tmp_path / "drwatch.yml"
    good = config.read_text()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    malformed = {
        "not UTF-8": good.encode() + b"\n# caf\xe9\n",
        "a recursive alias": good.encode() + b"\nx: &r [*r]\n",
        "nesting 5,000 deep": good.encode() + b"\nx: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "a FIFO as a secret file": good.replace(
            f"dsn: {cluster.dsn()}", f"dsn_file: {fifo}"
        ).encode(),
    }
    for what, content in malformed.items():
        config.write_bytes(content)
        rejected_before = daemon.log().count("config reload rejected")
        daemon.signal(signal.SIGHUP)
        wait_until(
            lambda n=rejected_before: daemon.log().count("config reload rejected") > n,
            15,
            what=f"{what} rejected",
        )
        assert daemon.value("drwatch_config_last_reload_successful") == 0, what
        assert daemon.get("/-/healthy")[0] == 200, what
    assert "Traceback" not in daemon.log()
    check = drwatch("config", "validate", str(config))
    assert check.returncode == 1 and "not a regular file" in check.stderr
    assert "Traceback" not in check.stderr
    config.write_text(good)
    daemon.signal(signal.SIGHUP)
    wait_until(
        lambda: daemon.value("drwatch_config_last_reload_successful") == 1, 15, what="reloaded"
    )


def test_sigterm_stops_within_seconds_while_a_check_waits_on_a_store_that_never_answers(
    cluster: PgCluster, dumps: dict[str, bytes], tmp_path: Path
) -> None:
    release = threading.Event()
    with serve(single_object_s3("stuck.dump", dumps["good"], stall=release)) as endpoint:
        config = write_config(
            tmp_path / "stuck.yml",
            [{"name": "db", "backups": {"store": "s3://b/", "timeout": "30m"}}],
            aws={**AWS, "endpoint_url": endpoint, "read_timeout": "10m"},
            state_dir=str(tmp_path / "state"),
        )
        daemon = DaemonProcess(config, tmp_path, workers=None)
        try:
            readers = wait_until(
                lambda: [p.pid for p in descendants(daemon.proc.pid) if p.name == "pg_restore"],
                30,
                what="pg_restore reading",
            )
            started = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(10) == 0
            assert time.monotonic() - started < 5, "stopping waited for the stuck check"
            wait_until(lambda: not any(_alive(pid) for pid in readers), 5, what="readers gone")
        finally:
            release.set()
            daemon.stop()
    assert '"drwatch stopped"' in daemon.log()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(")")[-1].split()[0] != "Z"  # a zombie has ended


def test_sighup_rereads_the_target_files(tmp_path: Path) -> None:
    targets = tmp_path / "targets.d"
    targets.mkdir()
    cache = "- {{name: {}, redis: {{url: 'redis://127.0.0.1:1/0', interval: 1s}}}}\n"
    (targets / "a.yml").write_text(cache.format("cache-a"))
    config = tmp_path / "drwatch.yml"
    config.write_text(f"target_files: [targets.d/*.yml]\nstate_dir: {tmp_path / 'state'}\n")
    daemon = DaemonProcess(config, tmp_path, workers=None)

    def checked(target: str) -> bool:
        return (
            daemon.value("drwatch_check_up", target=target, check="redis_persistence") is not None
        )

    try:
        wait_until(lambda: checked("cache-a"), 30, what="cache-a checked")
        (targets / "b.yml").write_text(cache.format("cache-b"))  # the fleet's generator adds one
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: checked("cache-b"), 30, what="cache-b checked after the reload")
        (targets / "a.yml").unlink()
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: not checked("cache-a"), 30, what="cache-a gone after the reload")
    finally:
        daemon.stop()
