"""`drwatch check` output and exit codes, as cron and Nagios read them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from exporter.runtime.exposure_record import ExposureRecord, ExposureSample
from sandbox.pgcluster import PgCluster, free_port
from tests.helpers import AWS, drwatch, file_store, write_config


def _check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return drwatch("check", "--config", str(config), *args)


def test_unreachable_database_is_critical_with_a_reason(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    config = write_config(tmp_path / "c.yml", [{"name": "gone", "postgres": {"dsn": dead}}])
    proc = _check(config)
    assert proc.returncode == 2, proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "CHECK", "STATUS", "SUMMARY"]
    rows = [line.split(None, 3) for line in lines[1:]]
    assert [r[1] for r in rows] == [
        "wal_archiving",
        "replication",
        "replication_slots",
        "cluster",
        "connections",
    ]
    assert all(r[0] == "gone" and r[2] == "CRITICAL" and "cannot connect" in r[3] for r in rows)


def test_json_shape_and_target_filter(shared_cluster: PgCluster, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yml",
        [
            {
                "name": "one",
                "postgres": {
                    "dsn": shared_cluster.dsn(),
                    "wal_archiving": {"enabled": False},
                    "replication": {"enabled": False},  # a single node: no failover scenario
                    "replication_slots": {"enabled": False},
                    "cluster": {"enabled": False},
                },
            },
            {"name": "two", "postgres": {"dsn": "${NOT_SET:-}"}},
        ],
    )
    proc = _check(config, "--format", "json", "--target", "one")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"status", "results", "exposures", "off"}
    assert doc["status"] == "OK"
    assert [(r["target"], r["check"], r["status"]) for r in doc["results"]] == [
        ("one", "connections", "OK"),
    ]
    assert set(doc["results"][0]) == {"target", "check", "status", "summary", "values"}
    assert doc["results"][0]["values"]["max_connections"] == 100
    assert doc["exposures"] == []
    assert doc["off"] == [
        "two: postgres is off: targets[1].postgres.dsn is empty (NOT_SET not set)"
    ]


def test_archive_mode_off_reports_infinite_exposure_as_json(
    shared_cluster: PgCluster, tmp_path: Path
) -> None:
    """With the daemon's per-minute exposure record in state_dir, each exposure carries its
    30 days: here 3 minutes within objective, one over it, one unmeasured."""
    state = tmp_path / "state"
    now = time.time() - time.time() % 60
    record = ExposureRecord(str(state), 366 * 86400.0)
    for minute, exposure in enumerate([10.0, 20.0, 900.0, None, 30.0]):
        record.journal.append(
            [ExposureSample(t=now - 3600 + minute * 60, x={"db/pitr": (exposure, 300.0)})]
        )
    config = write_config(
        tmp_path / "c.yml",
        [{"name": "db", "postgres": {"dsn": shared_cluster.dsn()}}],
        state_dir=str(state),
    )
    doc = json.loads(_check(config, "--format", "json").stdout)
    assert doc["exposures"] == [
        {
            "target": "db",
            "scenario": "pitr",
            "exposure_seconds": "+Inf",
            "objective_seconds": 300.0,
            "compliance_30d": {
                "ratio": 0.6,
                "minutes_recorded": 5,
                "minutes_within_objective": 3,
                "minutes_unknown": 1,
                "worst_exposure_seconds": 900.0,
                "worst_exposure_at": now - 3600 + 120,
                "recorded_since": now - 3600,
                "slo": 0.999,
                # 2 of the month's 43.2 budgeted minutes spent (one over, one unmeasured)
                "error_budget_remaining": 0.953704,
            },
        },
        # No standby to fail over to: everything would be lost, against an objective of 0.
        {
            "target": "db",
            "scenario": "primary_failover",
            "exposure_seconds": "+Inf",
            "objective_seconds": 0.0,
            "compliance_30d": None,  # not in the record
        },
    ]


def test_unknown_target_and_bad_config_are_unknown(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yml", [{"name": "db", "postgres": {"dsn": "postgresql://x@127.0.0.1/x"}}]
    )
    proc = _check(config, "--target", "nope")
    assert proc.returncode == 3 and "--target 'nope': no such target" in proc.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("targets: [{name: db, postgres: {dsn: x, color: blue}}]")
    proc = _check(bad)
    assert proc.returncode == 3 and "targets[0].postgres.color: unknown key" in proc.stderr


def test_verdicts_go_to_the_user_cache_when_state_dir_is_not_writable(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    store = file_store(tmp_path, {"a.dump": (dumps["good"], time.time())})
    config = write_config(
        tmp_path / "c.yml",
        [{"name": "db", "backups": {"store": f"file://{store}/"}}],
        state_dir="/dev/null/drwatch",  # under a file: not creatable, even by root
    )
    cache = tmp_path / "cache"
    proc = drwatch(
        "check", "--config", str(config), env={**os.environ, "XDG_CACHE_HOME": str(cache)}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        f"drwatch check: /dev/null/drwatch is not writable: integrity verdicts cached in "
        f"{cache / 'drwatch'}"
    ) in proc.stderr
    assert (cache / "drwatch" / "verdicts-db.json").exists()
    again = drwatch("check", "--config", str(config), "--format", "json",
                    env={**os.environ, "XDG_CACHE_HOME": "/dev/null"})  # fmt: skip
    assert again.returncode == 0 and "kept for this run only" in again.stderr
    assert json.loads(again.stdout)["status"] == "OK"  # stdout stays the JSON document


def test_full_sweep_on_demand(shared_cluster: PgCluster, tmp_path: Path) -> None:
    shared_cluster.execute(
        "CREATE TABLE IF NOT EXISTS parents (id int PRIMARY KEY);"
        "CREATE TABLE IF NOT EXISTS kids (id bigserial PRIMARY KEY, parent int);"
        "INSERT INTO kids (parent) VALUES (1)"
    )
    orphans = {
        "table": "kids",
        "column": "parent",
        "parent_table": "parents",
        "parent_column": "id",
    }
    pg = {"dsn": shared_cluster.dsn(), "verification": {"orphans": [orphans]}}
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "c.yml", [{"name": "db", "postgres": pg}], state_dir=str(state)
    )

    def sweep_time(*flags: str) -> float:
        proc = _check(config, "--format", "json", *flags)
        (verification,) = [
            r for r in json.loads(proc.stdout)["results"] if r["check"] == "verification"
        ]
        assert "1 orphan row" in verification["summary"], verification["summary"]
        kept = json.loads((state / "verification-db.json").read_text())
        return float(kept["orphans[0]"]["swept_at"])

    first = sweep_time()
    assert sweep_time() == first  # the second run read only new rows
    assert sweep_time("--full-sweep") > first


def test_a_hung_store_ends_the_run_at_its_timeout_naming_the_store(tmp_path: Path) -> None:
    """An S3 endpoint that takes connections and never answers: `drwatch check --timeout 3s`
    ends within the Nagios plugin's budget, CRITICAL, naming the store it waited on."""
    import socket

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # accepted by the kernel, never answered
    endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}"
    config = write_config(tmp_path / "c.yml", [{"name": "db", "backups": {
        "store": "s3://dumps/app/"}}], aws={**AWS, "endpoint_url": endpoint},
        state_dir=str(tmp_path / "state"))  # fmt: skip
    started = time.monotonic()
    try:
        proc = drwatch("check", "--config", str(config), "--timeout", "3s", timeout=30)
    finally:
        hung.close()
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "timed out after 3 s waiting on s3://dumps/app/" in proc.stdout, proc.stdout
    assert took < 15, took
    refused = drwatch("check", "--config", str(config), "--timeout", "soon")
    assert refused.returncode == 2 and "--timeout" in refused.stderr
