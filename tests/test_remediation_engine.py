"""The remediation engine against a real primary with a streaming standby, least-privileged.

Sessions are opened for real as two application users (plus a denylisted one and a superuser),
aged for real, and what survives is read back from pg_stat_activity.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import pytest

from exporter.remediation.engine import RemediationEngine
from sandbox.pgcluster import PgCluster, wait_until
from tests.remediation import (
    IDLE_FOR,
    Estate,
    Sessions,
    all_pids,
    audit,
    by_outcome,
    connections_result,
    counted,
    idle_action,
    loaded_config,
    metric,
    one_pass,
    wait_aged,
    wait_gone,
)


def test_execute_terminates_exactly_the_allowed_old_idle_sessions(
    primary: PgCluster, sessions: Sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    estate = Estate(sessions, primary)
    loaded = loaded_config(
        tmp_path,
        primary,
        {
            "enabled": True,
            "dry_run": False,
            "actions": {"terminate_idle_connections": idle_action(max_per_run=5)},
        },
    )
    before = all_pids(primary)
    kinds = {kind for kind, _, _ in before.values()}
    assert {"walsender", "checkpointer", "autovacuum launcher"} <= kinds
    engine = RemediationEngine()
    caplog.set_level(logging.INFO, logger="drwatch.remediation")
    try:
        decisions = engine.run(loaded.config, loaded.config.targets[0], connections_result(loaded))
        assert metric(engine, loaded, "drwatch_remediation_leader", target="db") == 1
    finally:
        engine.close()

    expected = set(estate.allowed_old[:5])  # oldest first, up to max_per_run
    assert set(by_outcome(decisions, "executed")) == expected
    wait_gone(primary, expected)
    after = all_pids(primary)
    assert set(before) - set(after) == expected, "only the decided pids may end"
    # Everything else is untouched: walsender, background workers, active, idle in transaction,
    # fresh idle, and the old idle sessions the filters or the limit protect.
    skipped = {d.session.pid: d.reason for d in decisions if d.outcome == "skipped" and d.session}
    assert len(estate.allowed_old) == 7
    for pid in estate.allowed_old[5:]:
        assert skipped[pid] == "max_per_run (5) reached"
    for pid, why in estate.protected_old.items():
        assert why in skipped[pid]
    for pid in estate.fresh_idle + estate.active + estate.idle_in_transaction:
        assert pid not in skipped and pid in after

    records = audit(caplog)
    assert sorted(r.pid for r in records if r.outcome == "executed") == sorted(expected)
    for r in records:
        assert r.action == "terminate_idle_connections" and r.target == "db"
        assert r.user and r.application and r.client_addr == "127.0.0.1"
        assert r.state == "idle" and r.idle_seconds > IDLE_FOR
        assert r.trigger.startswith("utilisation ")
    assert counted(engine, loaded) == {"executed": 5, "dry_run": 0, "skipped": 5, "failed": 0}


def test_dry_run_is_the_default_and_terminates_nothing(
    primary: PgCluster, sessions: Sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    estate = Estate(sessions, primary)
    loaded = loaded_config(
        tmp_path,
        primary,
        {"enabled": True, "actions": {"terminate_idle_connections": idle_action(max_per_run=5)}},
    )
    before = all_pids(primary)
    caplog.set_level(logging.INFO, logger="drwatch.remediation")
    engine, decisions = one_pass(loaded)
    assert by_outcome(decisions, "dry_run") == estate.allowed_old[:5]
    assert not by_outcome(decisions, "executed")
    assert set(before) <= set(all_pids(primary)), "a dry run terminated something"
    assert sorted(r.pid for r in audit(caplog) if r.outcome == "dry_run") == sorted(
        estate.allowed_old[:5]
    )
    assert all(r.dry_run is True for r in audit(caplog))
    assert counted(engine, loaded) == {"executed": 0, "dry_run": 5, "skipped": 5, "failed": 0}
    assert metric(engine, loaded, "drwatch_remediation_dry_run", target="db") == 1


def test_kill_switch_path_and_cooldown_stop_execution(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    first, second = sessions.idle("app_a", "web"), sessions.idle("app_b", "web")
    wait_aged(primary, [first, second])
    switch = tmp_path / "remediation.disabled"
    loaded = loaded_config(
        tmp_path,
        primary,
        {
            "enabled": True,
            "dry_run": False,
            "kill_switch_path": str(switch),
            "actions": {"terminate_idle_connections": idle_action(always=True, max_per_run=1)},
        },
    )
    target = loaded.config.targets[0]
    now = [1000.0]
    engine = RemediationEngine(clock=lambda: now[0])
    try:
        switch.touch()
        blocked = engine.run(loaded.config, target, connections_result(loaded))
        assert [(d.outcome, d.reason) for d in blocked] == [
            ("skipped", f"kill switch engaged ({switch} exists)")
        ]
        switch.unlink()
        assert by_outcome(
            engine.run(loaded.config, target, connections_result(loaded)), "executed"
        ) == [first]
        now[0] += 60
        cooling = engine.run(loaded.config, target, connections_result(loaded))
        assert [(d.outcome, d.reason) for d in cooling] == [("skipped", "cooldown: 240s left")]
        engine.kill_switch.engage()
        now[0] += 300
        assert metric(engine, loaded, "drwatch_remediation_kill_switch", target="db") == 1
        assert (
            by_outcome(engine.run(loaded.config, target, connections_result(loaded)), "executed")
            == []
        )
        engine.kill_switch.release()
        assert by_outcome(
            engine.run(loaded.config, target, connections_result(loaded)), "executed"
        ) == [second]
    finally:
        engine.close()


def test_idle_in_transaction_is_its_own_action(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    stuck = [sessions.idle_in_transaction("app_a", "web") for _ in range(2)]
    idle = sessions.idle("app_b", "web")
    wait_aged(primary, [*stuck, idle])
    loaded = loaded_config(
        tmp_path,
        primary,
        {
            "enabled": True,
            "dry_run": False,
            "actions": {
                "terminate_idle_in_transaction": {"idle_for": f"{IDLE_FOR}s", "max_per_run": 5}
            },
        },
    )
    _engine, decisions = one_pass(loaded)
    assert sorted(by_outcome(decisions, "executed")) == sorted(stuck)
    wait_gone(primary, set(stuck))
    assert idle in all_pids(primary)


def test_a_frozen_server_blocks_one_pass_and_never_piles_threads_up(
    cluster: PgCluster, tmp_path: Path
) -> None:
    cluster.execute("CREATE ROLE drwatch LOGIN; GRANT pg_monitor, pg_signal_backend TO drwatch")
    loaded = loaded_config(
        tmp_path, cluster, {"enabled": True, "actions": {"terminate_idle_connections": {}}}
    )
    config, target = loaded.config, loaded.config.targets[0]
    results = connections_result(loaded)
    engine = RemediationEngine()

    def passes() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "remediation-db" and t.is_alive()]

    try:
        engine.run(config, target, results)  # leader: the next pass starts on the lock's session
        cluster.signal_all(signal.SIGSTOP)  # frozen: the kernel still ACKs, nothing answers
        try:
            for _ in range(5):
                engine.run_in_background(config, target, results)
            assert len(passes()) == 1
        finally:
            cluster.signal_all(signal.SIGCONT)
        wait_until(lambda: not passes(), 30, what="the stuck pass returns once the server does")
        engine.run_in_background(config, target, results)  # and passes run again
        wait_until(lambda: engine.is_leader("db") is True and not passes(), 30, what="a pass")
    finally:
        engine.close()


def test_an_unreachable_lock_server_is_said_once_and_never_held_elsewhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stopped database: the leader lock cannot be taken. One line says leadership is not
    known, and why; passes after it say nothing; it is never "held elsewhere" (no other
    instance exists to hold it)."""
    from core.config.loading import parse_config
    from sandbox.pgcluster import free_port

    dead = f"postgresql://drwatch@127.0.0.1:{free_port()}/app"
    loaded = parse_config(
        f"remediation: {{enabled: true}}\ntargets: [{{name: db, postgres: {{dsn: '{dead}'}}}}]",
        env={},
    )
    engine = RemediationEngine()
    try:
        with caplog.at_level(logging.INFO, logger="drwatch.remediation"):
            for _ in range(3):
                assert engine.run(loaded.config, loaded.config.targets[0], {}) == []
    finally:
        engine.close()
    said = [r.getMessage() for r in caplog.records if "leadership" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("remediation leadership not known: the leader lock failed")
    assert not any("held elsewhere" in r.getMessage() for r in caplog.records)
