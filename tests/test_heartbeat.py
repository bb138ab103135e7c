"""The heartbeat: drwatch's one write on the primary, and the data loss every drill measures by
it in the copy it restored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config.postgres import HeartbeatConfig, PostgresConfig
from exporter.drills.heartbeat import HeartbeatWriter
from sandbox.pgcluster import PgCluster
from tests.test_drill_pitr import _archived, _run

DDL = ("CREATE TABLE drwatch_heartbeat (id int PRIMARY KEY CHECK (id = 1), tick bigint NOT NULL, "
       "at timestamptz NOT NULL)")  # fmt: skip


def test_the_writer_ticks_and_says_a_failure_once(
    cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    pg = PostgresConfig.model_validate({"dsn": cluster.dsn()})
    beat = HeartbeatConfig()
    writer = HeartbeatWriter("app")
    with caplog.at_level(logging.WARNING):
        writer.write(pg, beat)
        writer.write(pg, beat)  # no table yet: said once
    assert caplog.text.count("heartbeat not written") == 1 and writer.last_write is None
    cluster.execute(DDL)
    writer.write(pg, beat)
    writer.write(pg, beat)
    assert cluster.execute("SELECT tick FROM drwatch_heartbeat") == [(2,)]
    assert writer.last_write is not None


def _tick(cluster: PgCluster, tick: int, at: datetime) -> None:
    """A tick as the writer leaves it (its time given, so the test knows the truth)."""
    cluster.execute(
        "INSERT INTO drwatch_heartbeat (id, tick, at) VALUES (1, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET tick = EXCLUDED.tick, at = EXCLUDED.at"
        .replace("%s", "{}").format(tick, f"'{at.isoformat()}'"),
        "app",
    )


@pytest.mark.parametrize("gap", [False, True])
def test_a_pitr_drill_measures_the_data_it_loses(
    cluster: PgCluster, tmp_path: Path, gap: bool
) -> None:
    """Ticks a minute apart, each in a WAL segment of its own, then writes stop: the copy holds
    the last one, the measured loss is nothing. A segment lost from the archive: recovery stops
    at the tick before it, and the loss, minutes, is over the RPO: the drill fails saying so."""
    cluster.execute("CREATE DATABASE app")
    cluster.execute(DDL, "app")
    cluster.execute("CREATE TABLE debates (id serial, created_at timestamptz); "
                    "INSERT INTO debates (created_at) VALUES (now())", "app")  # fmt: skip
    start = datetime.now(UTC) - timedelta(minutes=10)
    _tick(cluster, 1, start)
    base = cluster.backups / "base"
    cluster.tar_base_backup(base)
    for tick in range(2, 6):
        _tick(cluster, tick, start + timedelta(minutes=tick))
        _archived(cluster)
    if gap:
        segments = sorted(p for p in cluster.archive.iterdir() if len(p.name) == 24)
        segments[-2].unlink()  # tick 4's: recovery ends with tick 3, two minutes short
    result = _run(cluster, tmp_path, base, heartbeat=True)
    if not gap:
        assert result.ok, result.summary
        assert result.values["measured_data_loss_seconds"] == 0.0
    else:
        assert not result.ok
        assert result.values["measured_data_loss_seconds"] >= 60.0
        assert "over the 1s RPO objective" in result.summary, result.summary


def test_the_daemon_writes_the_tick_and_exports_when(cluster: PgCluster, tmp_path: Path) -> None:
    from sandbox.pgcluster import wait_until
    from tests.daemon import DaemonProcess
    from tests.helpers import write_config

    cluster.execute(DDL)
    config = write_config(tmp_path / "c.yml", [{
        "name": "app", "postgres": {"dsn": cluster.dsn(), "heartbeat": {"interval": "1s"}},
    }], state_dir=str(tmp_path / "state"))  # fmt: skip
    daemon = DaemonProcess(config, tmp_path)
    try:
        wait_until(lambda: cluster.execute("SELECT max(tick) FROM drwatch_heartbeat")[0][0]
                   and cluster.execute("SELECT tick FROM drwatch_heartbeat")[0][0] >= 2, 30,
                   what="two ticks written")  # fmt: skip
        wait_until(lambda: daemon.value("drwatch_drill_heartbeat_last_write_timestamp_seconds",
                                        target="app", store="postgres"), 30,
                                        what="the write exported")  # fmt: skip
    finally:
        daemon.stop()
