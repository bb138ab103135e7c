"""Remediation against a real PostgreSQL with a streaming standby, as the least-privileged role.

Sessions are opened for real as two application users (plus a denylisted one and a superuser),
aged for real, and what survives is read back from pg_stat_activity.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from core.config.loading import LoadedConfig, load_config
from exporter.remediation.decision import Decision
from exporter.remediation.engine import RemediationEngine
from exporter.remediation.metrics import RemediationCollector
from exporter.remediation.postgres import carry_out, plan_terminations
from exporter.runtime.results import CheckResult
from sandbox.pgcluster import ARCHIVE_COPY, PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import CheckHarness, drwatch

IDLE_FOR = 4.0  # seconds a session must be idle to be a candidate

# The GRANTs the README documents for remediation.
GRANTS = """
CREATE ROLE drwatch LOGIN;
GRANT pg_monitor TO drwatch;
GRANT pg_signal_backend TO drwatch;
CREATE ROLE app_a LOGIN;
CREATE ROLE app_b LOGIN;
CREATE ROLE reporting LOGIN;
CREATE ROLE monitor_only LOGIN;
GRANT pg_monitor TO monitor_only;
"""

APP_USERS = ("app_a", "app_b", "reporting")


@pytest.fixture(scope="module")
def primary() -> Iterator[PgCluster]:
    """A primary with a streaming standby (a walsender that must survive everything)."""
    c = PgCluster().init(ARCHIVE_COPY, max_connections="40").start()
    standby = c.create_standby().start()
    try:
        c.execute(GRANTS)
        wait_until(
            lambda: c.execute("SELECT count(*) FROM pg_stat_replication")[0][0] == 1,
            30,
            what="standby streaming",
        )
        yield c
    finally:
        standby.destroy()
        c.destroy()


class Sessions:
    """Client sessions held open by the test, closed (and their backends ended) afterwards."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self.conns: list[psycopg.Connection[Any]] = []

    def _open(self, user: str, app: str, autocommit: bool = True) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.cluster.dsn(user=user), application_name=app, autocommit=autocommit
        )
        self.conns.append(conn)
        return conn

    def idle(self, user: str, app: str) -> int:
        return self._open(user, app).info.backend_pid

    def active(self, user: str, app: str) -> int:
        conn = self._open(user, app)
        conn.pgconn.send_query(b"SELECT pg_sleep(300)")  # returns at once; the backend sleeps
        return conn.info.backend_pid

    def idle_in_transaction(self, user: str, app: str) -> int:
        conn = self._open(user, app, autocommit=False)
        conn.execute("SELECT 1")
        return conn.info.backend_pid

    def make_active(self, pid: int) -> None:
        conn = next(c for c in self.conns if c.info.backend_pid == pid)
        conn.pgconn.send_query(b"SELECT pg_sleep(300)")

    def close(self) -> None:
        self.cluster.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE usename IN {APP_USERS} OR (usename = 'postgres' AND application_name = 'dba')"
        )
        for conn in self.conns:
            conn.pgconn.finish()  # not close(): a busy connection would wait for its query


@pytest.fixture
def sessions(primary: PgCluster) -> Iterator[Sessions]:
    s = Sessions(primary)
    try:
        yield s
    finally:
        s.close()


def all_pids(cluster: PgCluster) -> dict[int, tuple[str, str | None, str | None]]:
    """Every backend: pid -> (backend_type, user, state)."""
    rows = cluster.execute(
        "SELECT pid, backend_type, usename, state FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
    )
    return {pid: (kind, user, state) for pid, kind, user, state in rows}


def wait_aged(cluster: PgCluster, pids: list[int]) -> None:
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({}) "
        "AND state_change < now() - make_interval(secs => {})"
    ).format(",".join(map(str, pids)), IDLE_FOR + 0.5)
    wait_until(lambda: cluster.execute(sql)[0][0] == len(pids), 30, what="sessions aged")


def wait_gone(cluster: PgCluster, pids: set[int]) -> None:
    wait_until(lambda: not pids & set(all_pids(cluster)), 10, what="terminated backends gone")


def write_config(tmp_path: Path, cluster: PgCluster, remediation: dict[str, Any]) -> Path:
    doc = {
        "state_dir": str(tmp_path),
        "remediation": remediation,
        "targets": [
            {
                "name": "db",
                "postgres": {
                    "dsn": cluster.dsn(user="drwatch"),
                    "interval": "1s",
                    "connections": {"saturation_ratio": 0.5},
                },
            }
        ],
    }
    path = tmp_path / "drwatch.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def loaded_config(tmp_path: Path, cluster: PgCluster, remediation: dict[str, Any]) -> LoadedConfig:
    return load_config(write_config(tmp_path, cluster, remediation))


def connections_result(loaded: LoadedConfig) -> dict[str, CheckResult]:
    result = CheckHarness(loaded).run("connections")
    assert result.up, result.summary
    return {"connections": result}


def idle_action(**overrides: Any) -> dict[str, Any]:
    return {
        "when_utilization_above": 0.5,
        "idle_for": f"{IDLE_FOR}s",
        "exclude_users": ["reporting"],
        "applications": ["web", "worker"],
        **overrides,
    }


class Estate:
    """The acceptance scenario's sessions, oldest first where order matters."""

    def __init__(self, s: Sessions, cluster: PgCluster) -> None:
        # Old idle sessions, in the order they went idle.
        self.allowed_old = []
        self.protected_old: dict[int, str] = {}
        for i in range(10):
            if i == 2:
                self.protected_old[s.idle("reporting", "web")] = "exclude_users"
            elif i == 5:
                self.protected_old[s.idle("app_a", "psql")] = "is not in applications"
            elif i == 7:
                self.protected_old[s.idle("postgres", "dba")] = "superuser"
            else:
                self.allowed_old.append(s.idle("app_a" if i % 2 else "app_b", "web"))
        wait_aged(cluster, [*self.allowed_old, *self.protected_old])
        self.fresh_idle = [s.idle("app_a", "worker") for _ in range(10)]
        self.active = [s.active("app_b", "web") for _ in range(3)]
        self.idle_in_transaction = [s.idle_in_transaction("app_a", "web") for _ in range(2)]


def one_pass(loaded: LoadedConfig) -> tuple[RemediationEngine, list[Decision]]:
    """One engine pass on the first target, from a fresh connections check; lock released."""
    engine = RemediationEngine()
    try:
        target = loaded.config.targets[0]
        return engine, engine.run(loaded.config, target, connections_result(loaded))
    finally:
        engine.close()


def by_outcome(decisions: list[Decision], outcome: str) -> list[int]:
    return [d.session.pid for d in decisions if d.outcome == outcome and d.session]


def metric(engine: RemediationEngine, loaded: LoadedConfig, name: str, **labels: str) -> float:
    for family in RemediationCollector(engine, lambda: loaded.config).collect():
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise KeyError((name, labels))


def counted(engine: RemediationEngine, loaded: LoadedConfig) -> dict[str, float]:
    """drwatch_remediation_actions_total of terminate_idle_connections by outcome."""
    labels = {"target": "db", "action": "terminate_idle_connections"}
    return {
        outcome: metric(
            engine, loaded, "drwatch_remediation_actions_total", **labels, outcome=outcome
        )
        for outcome in ("executed", "dry_run", "skipped", "failed")
    }


def audit(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "remediation decision"]


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


def _remediate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return drwatch("remediate", "--config", str(config), *args)


def test_remediate_command_previews_and_executes_only_when_allowed(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    old = sorted(sessions.idle("app_a", "web") for _ in range(2))
    wait_aged(primary, old)
    actions = {"terminate_idle_connections": idle_action(always=True)}
    off = write_config(tmp_path, primary, {"actions": actions})

    preview = _remediate(off)
    assert preview.returncode == 0, preview.stderr
    assert "remediation is off in the config" in preview.stderr
    header, *rows = preview.stdout.splitlines()
    assert header.split()[:4] == ["TARGET", "ACTION", "OUTCOME", "PID"]
    planned = sorted(int(r.split()[3]) for r in rows if r.split()[2] == "dry_run")
    assert planned == old
    assert set(old) <= set(all_pids(primary))

    refused = _remediate(off, "--execute")
    assert refused.returncode == 2
    assert "remediation is not enabled for db" in refused.stderr
    assert set(old) <= set(all_pids(primary))

    on = write_config(tmp_path, primary, {"enabled": True, "actions": actions})  # dry_run: true
    executed = _remediate(on, "--execute", "--target", "db")
    assert executed.returncode == 0, executed.stdout + executed.stderr
    done = sorted(int(r.split()[3]) for r in executed.stdout.splitlines()[1:] if " executed " in r)
    assert done == old
    wait_gone(primary, set(old))


def _post(url: str, doc: object, token: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(doc).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_alertmanager_webhook_triggers_an_action_under_every_guard(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    old = sorted(sessions.idle("app_a", "web") for _ in range(2))
    protected = sessions.idle("reporting", "web")
    wait_aged(primary, [*old, protected])
    token = "webhook-token-0123456789"
    remediation = {
        "enabled": True,
        "dry_run": False,
        "webhook": {
            "token": token,
            "alerts": {"DrwatchConnectionPoolSaturation": "terminate_idle_connections"},
        },
        # Its own trigger never fires here: only the alert can set it off.
        "actions": {
            "terminate_idle_connections": idle_action(
                when_utilization_above=1.0, only_as_needed=False
            )
        },
    }
    daemon = DaemonProcess(write_config(tmp_path, primary, remediation), tmp_path)
    try:
        wait_until(
            lambda: daemon.value("drwatch_remediation_leader", target="db") is not None,
            30,
            what="a remediation pass",
        )
        url = daemon.base + "/webhook/alertmanager"
        alert = {
            "status": "firing",
            "labels": {"alertname": "DrwatchConnectionPoolSaturation", "target": "db"},
        }
        payload = {
            "version": "4",
            "status": "firing",
            "alerts": [
                alert,
                {**alert, "status": "resolved"},
                {"status": "firing", "labels": {"alertname": "DrwatchDataGap", "target": "db"}},
                {**alert, "labels": {**alert["labels"], "target": "elsewhere"}},
            ],
        }
        assert _post(url, payload)[0] == 401
        assert _post(url, payload, "wrong-token-0123456789")[0] == 401
        assert daemon.get("/webhook/alertmanager")[0] == 405
        assert _post(url, {"not": "alertmanager"}, token)[0] == 400
        assert set(old) | {protected} <= set(all_pids(primary)), "nothing acts on its own"

        status, body = _post(url, payload, token)
        assert status == 202, body
        assert json.loads(body) == {
            "accepted": {"db": ["terminate_idle_connections"]},
            "ignored": 3,
        }
        wait_gone(primary, set(old))
        assert protected in all_pids(primary)
        audit_lines = [
            json.loads(line)
            for line in daemon.log().splitlines()
            if '"remediation decision"' in line
        ]
        executed = [line for line in audit_lines if line["outcome"] == "executed"]
        assert sorted(line["pid"] for line in executed) == old
        assert {line["trigger"] for line in executed} == {"alert DrwatchConnectionPoolSaturation"}
        assert any(
            line["pid"] == protected and line["outcome"] == "skipped" for line in audit_lines
        )
        assert token not in daemon.log()
    finally:
        daemon.stop()


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
