"""Shared by the remediation tests: real sessions of real application users on a primary with a
streaming standby, aged for real, and the config, passes and counts the tests read back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from core.config.loading import LoadedConfig, load_config
from exporter.remediation.decision import Decision
from exporter.remediation.engine import RemediationEngine
from exporter.remediation.metrics import RemediationCollector
from exporter.runtime.results import CheckResult
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness

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
