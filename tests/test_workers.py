"""Checks in worker processes: a worker killed is replaced and its checks say why meanwhile, a
reload moves targets between workers without a gap on /metrics, SIGTERM stops every worker
however stuck its checks, and nothing is left behind (no zombie, no orphan)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.sharding import UNSHARDED, Shard
from exporter.cli.main import cores
from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import descendants, write_config

INTERVAL = 3.0


def _named(worker: int, count: int, prefix: str) -> list[str]:
    """`count` target names the hash puts in `worker` of two."""
    names = (f"{prefix}{i}" for i in range(1000))
    return [n for n in names if UNSHARDED.worker_of(n, 2) == worker][:count]


def _targets(cluster: PgCluster, names: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": n, "postgres": {"dsn": cluster.dsn(), "interval": f"{INTERVAL:.0f}s"}}
        for n in names
    ]


def _events(daemon: DaemonProcess, msg: str) -> list[dict[str, Any]]:
    found = []
    for line in daemon.log().splitlines():
        if line.startswith("{") and f'"msg": "{msg}"' in line:
            found.append(json.loads(line))
    return found


def _workers(daemon: DaemonProcess) -> dict[int, int]:
    """The pid of each worker, as last started."""
    return {e["worker"]: e["pid"] for e in _events(daemon, "worker started")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _no_zombies(daemon: DaemonProcess) -> None:
    zombies = [p for p in descendants(daemon.proc.pid) if p.state == "Z"]
    assert zombies == []


@pytest.fixture
def fleet(shared_cluster: PgCluster, tmp_path: Path) -> Iterator[tuple[DaemonProcess, list[str]]]:
    names = _named(0, 2, "db") + _named(1, 2, "db")
    config = write_config(
        tmp_path / "fleet.yml", _targets(shared_cluster, names), state_dir=str(tmp_path / "state")
    )
    daemon = DaemonProcess(config, tmp_path, args=("--workers", "2"))
    try:
        wait_until(lambda: daemon.get("/-/ready")[0] == 200, 60, what="every check ran")
        yield daemon, names
    finally:
        daemon.stop()


def test_a_killed_worker_is_replaced_within_an_interval_and_its_checks_say_why(
    fleet: tuple[DaemonProcess, list[str]],
) -> None:
    daemon, names = fleet
    mine, others = names[:2], names[2:]  # worker 0's targets, worker 1's
    assert daemon.value("drwatch_worker_targets", worker="0") == 2
    assert daemon.value("drwatch_worker_targets", worker="1") == 2
    killed = _workers(daemon)[0]
    killed_at = time.time()
    os.kill(killed, signal.SIGKILL)

    wait_until(lambda: _workers(daemon)[0] != killed, INTERVAL, what="worker 0 replaced")
    (died,) = _events(daemon, "worker died; starting it again")
    assert died["worker"] == 0 and died["how"] == "killed by SIGKILL"
    # Meanwhile its targets' checks were down, saying why; the other worker's never were.
    down = [
        e
        for e in _events(daemon, "check status changed")
        if "worker process 0 died (killed by SIGKILL)" in e["summary"]
    ]
    assert {e["target"] for e in down} == set(mine)
    assert {e["new_status"] for e in down} == {"UNKNOWN"}
    # /metrics is built at most once a second: it says so by the next build.
    wait_until(
        lambda: all(
            daemon.value(
                "drwatch_check_errors_total", reason="internal", target=t, check="connections"
            )
            == 1
            for t in mine
        ),
        3,
        what="the down runs counted",
    )
    for target in others:
        labels = {"target": target, "check": "connections"}
        assert daemon.value("drwatch_check_errors_total", reason="internal", **labels) == 0
    # The successor measures again (within an interval of its start) and nothing is a zombie.
    wait_until(
        lambda: all(
            (
                daemon.value(
                    "drwatch_check_last_success_timestamp_seconds", target=t, check="connections"
                )
                or 0
            )
            > killed_at
            for t in mine
        ),
        2 * INTERVAL,
        what="worker 0's targets measured again",
    )
    assert daemon.value("drwatch_worker_restarts_total", worker="0") == 1
    assert daemon.value("drwatch_worker_restarts_total", worker="1") == 0
    assert not _alive(killed)
    _no_zombies(daemon)


def test_sighup_moves_targets_between_workers_without_a_scrape_gap(
    shared_cluster: PgCluster, tmp_path: Path
) -> None:
    """One target runs in one worker (never more workers than targets); a reload adding one
    starts the second, and the first target, hashed to it, moves there: every scrape in
    between still has its lines."""
    (moving,) = _named(1, 1, "app")
    (added,) = _named(0, 1, "app")
    config = tmp_path / "fleet.yml"
    state = str(tmp_path / "state")
    write_config(config, _targets(shared_cluster, [moving]), state_dir=state)
    daemon = DaemonProcess(config, tmp_path, args=("--workers", "2"))
    scrapes: list[tuple[int, bool]] = []
    done = threading.Event()
    line = f'drwatch_check_up{{check="connections",target="{moving}"}} 1.0'

    def scrape() -> None:
        while not done.is_set():
            try:
                status, body = daemon.get("/metrics", timeout=10)  # Prometheus's timeout
            except OSError as exc:  # a lost scrape is a gap too: recorded, not a dead thread
                status, body = -1, str(exc)
            scrapes.append((status, line in body))
            done.wait(0.05)  # the scrapers' pace

    try:
        wait_until(lambda: daemon.get("/-/ready")[0] == 200, 60, what="every check ran")
        assert daemon.value("drwatch_worker_targets", worker="0") == 1
        assert daemon.value("drwatch_worker_targets", worker="1") is None
        scraper = threading.Thread(target=scrape)
        scraper.start()
        wait_until(lambda: len(scrapes) >= 5, 10, what="scrapes before the reload")
        write_config(config, _targets(shared_cluster, [moving, added]), state_dir=state)
        reloaded_at = time.time()
        daemon.signal(signal.SIGHUP)
        wait_until(
            lambda: (
                (
                    daemon.value(
                        "drwatch_check_last_success_timestamp_seconds",
                        target=moving,
                        check="connections",
                    )
                    or 0
                )
                > reloaded_at
            ),
            3 * INTERVAL,
            what="the moved target measured by its new worker",
        )
        after = len(scrapes)
        wait_until(lambda: len(scrapes) >= after + 5, 10, what="scrapes after the move")
        done.set()
        scraper.join(10)
    finally:
        done.set()
        daemon.stop()
    assert daemon.proc.returncode == 0
    (moved,) = _events(daemon, "targets moved between workers")
    assert moved["moved"] == 1
    assert [e["worker"] for e in _events(daemon, "worker started")] == [0, 1]
    assert len(scrapes) > 10
    assert all(status == 200 and seen for status, seen in scrapes), scrapes


def _hung_server() -> tuple[socket.socket, int]:
    """Accepts connections (the kernel does, from the backlog) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener, listener.getsockname()[1]


def test_sigterm_stops_every_worker_within_the_deadline_and_leaves_no_process(
    shared_cluster: PgCluster, tmp_path: Path
) -> None:
    listener, port = _hung_server()
    targets = _targets(shared_cluster, _named(0, 1, "ok") + _named(1, 1, "ok"))  # ok0 in worker 0
    hung = f"postgresql://drwatch@127.0.0.1:{port}/app"
    targets += [
        {"name": n, "postgres": {"dsn": hung, "connect_timeout": "30s", "timeout": "60s"}}
        for n in _named(0, 1, "hung") + _named(1, 1, "hung")
    ]
    config = write_config(tmp_path / "fleet.yml", targets, state_dir=str(tmp_path / "state"))
    daemon = DaemonProcess(config, tmp_path, args=("--workers", "2"))
    try:
        wait_until(lambda: len(_workers(daemon)) == 2, 30, what="two workers")
        wait_until(
            lambda: daemon.value(
                "drwatch_check_up", target=targets[0]["name"], check="connections"
            ),
            30,
            what="checks running",
        )
        # systemd sends SIGTERM to every process of the unit: a worker leaves its stopping to
        # the daemon (or it would seem to have died, and be restarted, in between).
        worker = _workers(daemon)[0]
        os.kill(worker, signal.SIGTERM)
        signalled = time.time()
        ok = targets[0]["name"]
        wait_until(
            lambda: (
                (
                    daemon.value(
                        "drwatch_check_last_success_timestamp_seconds",
                        target=ok,
                        check="connections",
                    )
                    or 0
                )
                > signalled + 0.5
            ),
            3 * INTERVAL,
            what="worker 0 still running its checks",
        )
        assert _alive(worker) and _workers(daemon)[0] == worker
        assert not _events(daemon, "worker died; starting it again")
        # Every process drwatch started: the workers, the forkserver, the resource tracker.
        started = descendants(daemon.proc.pid)
        assert {w for w in _workers(daemon).values()} <= {p.pid for p in started}
        began = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 0
        assert time.monotonic() - began < 5, "stopping waited for the stuck checks"
        wait_until(
            lambda: not any(_alive(p.pid) for p in started),
            5,
            what="every process drwatch started gone",
        )
    finally:
        daemon.stop()
        listener.close()
    assert '"drwatch stopped"' in daemon.log()
    assert "did not stop in time" not in daemon.log()


def test_worker_assignment_within_a_shard_uses_every_worker() -> None:
    """Every target of a shard has the same remainder by the shard count: the workers take the
    hash past it, or a shard's targets would all land in one worker."""
    shard = Shard(1, 2)
    mine = [n for n in (f"db{i}" for i in range(400)) if shard.owns(n)]
    per_worker = [sum(1 for n in mine if shard.worker_of(n, 2) == w) for w in (0, 1)]
    assert min(per_worker) > 0.4 * len(mine), per_worker


def test_the_default_worker_count_follows_the_cgroup_cpu_quota(tmp_path: Path) -> None:
    """A container limited to 1.5 CPUs on a bigger node runs 2 workers, not one per host core."""
    allowed = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cores(cpu_max) == min(allowed, 2)
    cpu_max.write_text("50000 100000\n")
    assert cores(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert cores(cpu_max) == allowed
    assert cores(tmp_path / "absent") == allowed  # cgroup v1, or none: the affinity alone
