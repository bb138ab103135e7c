"""The drill engine: one drill at a time, never in the way of checks or scrapes."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from core.config.loading import LoadedConfig
from core.config.schema import Config
from exporter.drills.engine import DrillEngine
from exporter.drills.metrics import DrillCollector
from exporter.drills.result import DrillResult
from sandbox.pgcluster import wait_until
from sandbox.redisserver import RedisServer
from tests.daemon import DaemonProcess
from tests.helpers import AWS, make_config, reachable, serve, single_object_s3, write_keys


def _snapshot(redis_server: RedisServer) -> bytes:
    redis_server.start(save="3600 1")
    write_keys(redis_server, 5000)  # ~100 kB: a dozen paced pieces to download
    redis_server.client().save()
    return (redis_server.dir / "dump.rdb").read_bytes()


def _target(
    name: str, endpoint: str, tmp_path: Path, run_at_start: bool = False
) -> dict[str, object]:
    """A target with a redis drill, run as root: its scratch server's OS user reaches its
    directory."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    reachable(scratch)
    return {
        "name": name,
        "redis": {"url": "redis://127.0.0.1:1/0", "snapshot_store": "s3://snapshots/"},
        "drills": {"schedule": "0 3 * * 0", "run_at_start": run_at_start, "redis": {},
                   "scratch": {"user": "postgres", "dir": str(scratch)}},
    }


def _drill_at_start(tmp_path: Path, endpoint: str) -> Path:
    """A daemon config whose one target's redis drill runs at start, from `endpoint`."""
    config = tmp_path / "c.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "targets": [_target("cache", endpoint, tmp_path, run_at_start=True)],
                "aws": {**AWS, "endpoint_url": endpoint},
                "state_dir": str(tmp_path / "state"),
            }
        )
    )
    return config


def test_two_drills_never_overlap(redis_server: RedisServer, tmp_path: Path) -> None:
    rdb = _snapshot(redis_server)
    with serve(single_object_s3("s.rdb", rdb, pace=0.05)) as endpoint:  # ~0.5 s to download
        loaded = make_config(
            [_target("a", endpoint, tmp_path), _target("b", endpoint, tmp_path)],
            aws={**AWS, "endpoint_url": endpoint},
            state_dir=str(tmp_path),
        )
        config = loaded.config
        engine = DrillEngine()
        engine.configure(config)  # drills.max_concurrent: 1, the default
        results: list[DrillResult] = []
        threads = [
            threading.Thread(target=lambda t=t: results.extend(engine.run(config, t)))
            for t in config.targets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(results) == 2 and all(r.ok for r in results), [r.summary for r in results]
    first, second = sorted(results, key=lambda r: r.started_at)
    assert second.started_at >= first.started_at + first.duration_seconds - 0.01


def test_metrics_answer_while_a_drill_runs(redis_server: RedisServer, tmp_path: Path) -> None:
    rdb = _snapshot(redis_server)
    with serve(single_object_s3("s.rdb", rdb, pace=0.3)) as endpoint:  # a few seconds
        config = _drill_at_start(tmp_path, endpoint)
        daemon = DaemonProcess(config, tmp_path)
        try:
            seen_running = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                started = time.monotonic()
                running = daemon.value("drwatch_drill_running", target="cache", scenario="redis")
                assert time.monotonic() - started < 1.0, "a scrape waited on the drill"
                seen_running |= running == 1
                if daemon.value("drwatch_drill_success", target="cache", scenario="redis") == 1:
                    break
                time.sleep(0.1)  # polling the daemon, bounded by the deadline above
            assert seen_running, "the drill was never seen running"
            assert daemon.value("drwatch_drill_success", target="cache", scenario="redis") == 1
            assert daemon.value("drwatch_rto_measured_seconds", target="cache", scenario="redis")
        finally:
            daemon.stop()


def test_sigterm_during_a_drill_stops_at_once_and_nothing_is_left(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    rdb = _snapshot(redis_server)
    with serve(single_object_s3("s.rdb", rdb, pace=1.0)) as endpoint:  # a slow download
        config = _drill_at_start(tmp_path, endpoint)
        drills = tmp_path / "scratch"
        daemon = DaemonProcess(config, tmp_path)
        try:
            wait_until(
                lambda: daemon.value("drwatch_drill_running", target="cache", scenario="redis"),
                30,
                what="the drill running",
            )
            assert list(drills.iterdir()), "the drill's files"
            started = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(10) == 0
            assert time.monotonic() - started < 5
        finally:
            daemon.stop()
        (tmp_path / "again").mkdir()
        again = DaemonProcess(config, tmp_path / "again")  # its own log; the same config
        try:
            wait_until(lambda: not list(drills.iterdir()), 30, what="what the drill left removed")
        finally:
            again.stop()


def _never_reached(tmp_path: Path) -> LoadedConfig:
    """One target's redis drill, its store unreachable: nothing runs, clocks do."""
    return make_config(
        [_target("cache", "http://127.0.0.1:1", tmp_path)],
        aws={**AWS, "endpoint_url": "http://127.0.0.1:1"},
        state_dir=str(tmp_path),
    )


def test_a_restart_keeps_the_overdue_clock_of_a_drill_never_run(tmp_path: Path) -> None:
    loaded = _never_reached(tmp_path)
    first = DrillEngine()
    first.configure(loaded.config)
    since = first.snapshot()[2][("cache", "redis")]
    wait_until(lambda: time.time() > since + 0.05, 5, what="time to pass")
    restarted = DrillEngine()
    restarted.configure(loaded.config)
    assert restarted.snapshot()[2] == {("cache", "redis"): since}


def _paced_pair(tmp_path: Path, endpoint: str, **drills: object) -> Config:
    return make_config(
        [_target("a", endpoint, tmp_path), _target("b", endpoint, tmp_path)],
        aws={**AWS, "endpoint_url": endpoint},
        state_dir=str(tmp_path),
        drills=drills,
    ).config


def _while_a_runs(engine: DrillEngine, config, then):  # type: ignore[no-untyped-def]
    """Target a's drill in a thread; `then()` once it holds its slot; a's results after."""
    results: list[DrillResult] = []
    thread = threading.Thread(target=lambda: results.extend(engine.run(config, config.targets[0])))
    thread.start()
    try:
        wait_until(lambda: ("a", "redis") in engine.running_now(), 10, what="drill a to start")
        other = then()
    finally:
        thread.join(60)
    return results, other


def test_a_drill_without_a_free_slot_is_deferred_not_failed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """max_concurrent 1: b's scheduled drill waits `drills.wait`, then is deferred: counted
    and recorded as such, with no failed drill, no measured RTO, no DrwatchDrillFailed."""
    rdb = _snapshot(redis_server)
    with serve(single_object_s3("s.rdb", rdb, pace=0.3)) as endpoint:  # a few seconds
        config = _paced_pair(tmp_path, endpoint, max_concurrent=1, wait="1s")
        engine = DrillEngine()
        engine.configure(config)
        first, _ = _while_a_runs(
            engine, config, lambda: engine._run_safely(config, config.targets[1], "redis")
        )
    assert first[0].ok, first[0].summary
    last, _, _ = engine.snapshot()
    assert ("b", "redis") not in last  # nothing judged: no success gauge, no failed drill
    deferred, counts = engine.deferrals()
    assert "drills.max_concurrent: 1" in deferred[("b", "redis")].summary
    assert counts == {("a", "redis", "passed"): 1, ("b", "redis", "deferred"): 1}
    text = _scrape(engine, config)
    assert 'drwatch_drills_total{outcome="deferred",scenario="redis",target="b"} 1.0' in text
    assert 'drwatch_drills_total{outcome="failed",scenario="redis",target="b"} 0.0' in text
    assert 'drwatch_drill_success{scenario="redis",target="b"}' not in text
    assert "drwatch_drill_last_deferred_timestamp_seconds" in text
    records = engine.history.read() if engine.history else []
    assert [(r.target, r.outcome) for r in records] == [("b", "deferred"), ("a", "passed")]
    again = DrillEngine()  # the counts and the history survive a restart
    again.configure(config)
    assert again.deferrals()[1] == counts and len(again.history.read()) == 2  # type: ignore[union-attr]


def test_max_concurrent_two_lets_two_targets_restore_at_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    rdb = _snapshot(redis_server)
    with serve(single_object_s3("s.rdb", rdb, pace=0.3)) as endpoint:
        config = _paced_pair(tmp_path, endpoint, max_concurrent=2, wait="1s")
        engine = DrillEngine()
        engine.configure(config)
        first, second = _while_a_runs(
            engine, config, lambda: engine.run(config, config.targets[1], wait=1.0)
        )
    assert first[0].ok and second[0].ok, (first[0].summary, second[0].summary)
    assert second[0].started_at < first[0].started_at + first[0].duration_seconds


def test_a_drill_past_the_disk_budget_is_deferred_and_says_how_much(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    rdb = _snapshot(redis_server)
    with serve(single_object_s3("s.rdb", rdb)) as endpoint:
        config = _paced_pair(tmp_path, endpoint, disk_budget=len(rdb))  # needs 4x the snapshot
        engine = DrillEngine()
        engine.configure(config)
        (result,) = engine.run(config, config.targets[0])
    assert result.deferred and result.status.name == "UNKNOWN"
    assert "of drills.disk_budget" in result.summary


def test_overdue_per_scenario_names_the_runbooks_test(tmp_path: Path) -> None:
    loaded = _never_reached(tmp_path)
    engine = DrillEngine()
    engine.configure(loaded.config)
    text = _scrape(engine, loaded.config)
    assert 'drwatch_drill_overdue{scenario="redis",target="cache"} 0.0' in text
    assert (
        'drwatch_drill_schedule_info{frequency="weekly",scenario="redis",schedule="0 3 * * 0",'
        'target="cache",test="Redis snapshot restore"} 1.0'
    ) in text
    engine.expected_since[("cache", "redis")] = time.time() - 9 * 86400  # 8d max_age passed
    assert 'drwatch_drill_overdue{scenario="redis",target="cache"} 1.0' in _scrape(
        engine, loaded.config
    )


def _scrape(engine: DrillEngine, config) -> str:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    registry.register(DrillCollector(engine, lambda: config))
    return generate_latest(registry).decode()


def test_a_drill_run_by_hand_is_the_daemons_state(tmp_path: Path) -> None:
    """`drwatch drill` appends its record to the shared history: the running daemon takes it
    as its drill state when it reads the history again (every 30 s, at SIGHUP), and a restarted
    one at start, so running a drill by hand clears *Drill overdue*, as the runbook says."""
    from exporter.drills.history import drill_history, record_of

    loaded = _never_reached(tmp_path)
    engine = DrillEngine()
    engine.configure(loaded.config)
    engine.expected_since[("cache", "redis")] = time.time() - 9 * 86400  # 8d max_age passed
    assert 'drwatch_drill_overdue{scenario="redis",target="cache"} 1.0' in _scrape(
        engine, loaded.config
    )
    by_hand = DrillResult("cache", "redis", time.time() - 5, ok=True, summary="loaded 5 keys",
                          duration_seconds=4.0)  # fmt: skip
    drill_history(str(tmp_path), loaded.config.drills).append([record_of(by_hand, None)])
    engine.refresh_from_history()
    text = _scrape(engine, loaded.config)
    assert 'drwatch_drill_overdue{scenario="redis",target="cache"} 0.0' in text
    line = next(t for t in text.splitlines()
                if t.startswith("drwatch_drill_last_success_timestamp_seconds{"))  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) == by_hand.started_at
    last, passed, _ = engine.snapshot()
    assert passed[("cache", "redis")].summary == "loaded 5 keys"
    assert last[("cache", "redis")].duration_seconds == 4.0
    restarted = DrillEngine()
    restarted.configure(loaded.config)
    assert restarted.snapshot()[1][("cache", "redis")].started_at == by_hand.started_at
