"""The PostgreSQL side of remediation (which sessions, the guarded terminate, the leader lock) against a real primary with a streaming standby, as the least-privileged role."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from exporter.remediation.engine import RemediationEngine
from exporter.remediation.postgres import carry_out, plan_terminations
from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.remediation import (
    Estate,
    Sessions,
    all_pids,
    by_outcome,
    connections_result,
    idle_action,
    loaded_config,
    one_pass,
    wait_aged,
    wait_gone,
    write_config,
)


def test_only_as_many_as_bring_utilisation_under_the_ratio(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    estate = Estate(sessions, primary)
    loaded = loaded_config(
        tmp_path,
        primary,
        {
            "enabled": True,
            "dry_run": False,
            "actions": {"terminate_idle_connections": idle_action(when_utilization_above=0.6)},
        },
    )
    _engine, decisions = one_pass(loaded)
    executed = by_outcome(decisions, "executed")
    assert 0 < len(executed) < len(estate.allowed_old)
    assert executed == estate.allowed_old[: len(executed)], "oldest first"
    assert {
        d.reason
        for d in decisions
        if d.session and d.session.pid in estate.allowed_old[len(executed) :]
    } == {"not needed: utilisation is back under the ratio without it"}
    wait_gone(primary, set(executed))
    after = connections_result(loaded)["connections"].values["utilization_ratio"]
    assert isinstance(after, float) and after < 0.6


def test_a_session_that_turns_active_after_the_decision_survives(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    estate = Estate(sessions, primary)
    loaded = loaded_config(
        tmp_path,
        primary,
        {"enabled": True, "actions": {"terminate_idle_connections": idle_action()}},
    )
    target = loaded.config.targets[0]
    options = loaded.config.remediation_for(target).actions.terminate_idle_connections
    assert target.postgres is not None and options is not None
    options = options.model_copy(update={"only_as_needed": False})
    with psycopg.connect(target.postgres.dsn, autocommit=True, row_factory=dict_row) as conn:
        plan = plan_terminations(conn, "db", "terminate_idle_connections", options)  # type: ignore[arg-type]
        planned = by_outcome(plan, "planned")
        assert planned == estate.allowed_old
        became_active, ran_and_went_idle = planned[0], planned[1]
        sessions.make_active(became_active)
        ran = next(c for c in sessions.conns if c.info.backend_pid == ran_and_went_idle)
        ran.execute("SELECT 1")  # active, then idle again: a newer state_change
        wait_until(
            lambda: (
                primary.execute(f"SELECT state FROM pg_stat_activity WHERE pid = {became_active}")
                == [("active",)]
            ),
            10,
            what="session active",
        )
        done = carry_out(conn, plan, dry_run=False)
    survivors = {became_active, ran_and_went_idle}
    assert set(by_outcome(done, "skipped")) >= survivors
    assert set(by_outcome(done, "executed")) == set(planned) - survivors
    wait_gone(primary, set(planned) - survivors)
    assert survivors <= set(all_pids(primary))


def test_missing_pg_signal_backend_is_a_failed_decision_naming_the_grant(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    old = sessions.idle("app_a", "web")
    wait_aged(primary, [old])
    loaded = loaded_config(
        tmp_path,
        primary,
        {
            "enabled": True,
            "dry_run": False,
            "actions": {"terminate_idle_connections": idle_action(always=True)},
        },
    )
    pg = loaded.config.targets[0].postgres
    assert pg is not None
    bare = loaded.config.model_copy(
        update={
            "targets": [
                loaded.config.targets[0].model_copy(
                    update={
                        "postgres": pg.model_copy(update={"dsn": primary.dsn(user="monitor_only")})
                    }
                )
            ]
        }
    )
    engine = RemediationEngine()
    try:
        decisions = engine.run(bare, bare.targets[0], connections_result(loaded))
    finally:
        engine.close()
    assert [d.outcome for d in decisions] == ["failed"]
    assert "GRANT pg_signal_backend TO monitor_only" in decisions[0].reason
    assert old in all_pids(primary)


def test_two_daemons_one_leader_and_the_lock_moves_when_it_dies(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    remediation = {
        "enabled": True,
        "dry_run": False,
        "actions": {"terminate_idle_connections": idle_action(always=True)},
    }
    (tmp_path / "a").mkdir()
    leader = DaemonProcess(write_config(tmp_path / "a", primary, remediation), tmp_path / "a")
    try:
        wait_until(
            lambda: leader.value("drwatch_remediation_leader", target="db") == 1,
            30,
            what="first daemon leads",
        )
        old = sessions.idle("app_a", "web")
        wait_until(lambda: old not in all_pids(primary), 30, what="the leader acts")
        loaded = loaded_config(tmp_path, primary, remediation)
        follower = RemediationEngine()
        try:
            leader.signal(signal.SIGUSR1)  # the leader stays leader but stops acting
            wait_until(
                lambda: leader.value("drwatch_remediation_kill_switch", target="db") == 1,
                10,
                what="kill switch engaged",
            )
            survivor = sessions.idle("app_b", "web")
            wait_aged(primary, [survivor])
            assert (
                follower.run(loaded.config, loaded.config.targets[0], connections_result(loaded))
                == []
            )
            assert follower.is_leader("db") is False
            assert survivor in all_pids(primary)

            leader.proc.kill()  # SIGKILL: no clean-up, the server ends its session
            leader.proc.wait(10)

            def follower_acts() -> bool:
                decisions = follower.run(
                    loaded.config, loaded.config.targets[0], connections_result(loaded)
                )
                return survivor in by_outcome(decisions, "executed")

            wait_until(follower_acts, 30, what="the lock moves to the other drwatch")
            assert follower.is_leader("db") is True
        finally:
            follower.close()
        executed = [line for line in leader.log().splitlines() if '"outcome": "executed"' in line]
        assert len(executed) == 1 and f'"pid": {old}' in executed[0]
    finally:
        leader.stop()
