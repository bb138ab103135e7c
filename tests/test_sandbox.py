"""`make run`'s sandbox starts everything, serves what it prints, and Ctrl-C cleans it all up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from sandbox.pgcluster import wait_until
from tests.daemon import http_get
from tests.helpers import drwatch

ROOT = Path(__file__).resolve().parent.parent


def test_sandbox_runs_the_example_config_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "sandbox.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.run"], cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            match = wait_until(
                lambda: re.search(r"metrics +(http://\S+)/metrics", out.read_text()),
                120,
                what="sandbox up",
            )
            base = match.group(1)
            printed = out.read_text()
            # The sandbox's own lines, indented; log lines (a first-run warning) come between.
            dumps = Path(re.search(r"^  backups +(\S+)", printed, re.M).group(1))
            archive = Path(re.search(r"^  wal archive +(\S+)", printed, re.M).group(1))
            wait_until(lambda: http_get(base + "/-/ready")[0] == 200, 60, what="ready")
            status, metrics = http_get(base + "/metrics")
            assert status == 200
            assert 'drwatch_table_gaps{table="debates",target="aragora-prod"} 1.0' in metrics
            assert 'drwatch_check_up{check="wal_archiving",target="aragora-prod"} 1.0' in metrics
            assert 'drwatch_backup_newest_verified{target="aragora-prod"} 1.0' in metrics
            assert 'drwatch_wal_archive_missing_segments{target="aragora-prod"} 0.0' in metrics
            assert (
                'drwatch_check_up{check="redis_persistence",target="aragora-prod"} 1.0' in metrics
            )
            assert (
                'drwatch_rpo_exposure_seconds{scenario="primary_failover",target="aragora-prod"} 0.0'
                in metrics
            )
            assert 'drwatch_redis_snapshot_newest_verified{target="aragora-prod"} 1.0' in metrics
            assert 'drwatch_check_up{check="replica_copy",target="aragora-prod"} 1.0' in metrics
            assert 'drwatch_check_up{check="base_backups",target="aragora-prod"} 1.0' in metrics
            assert 'drwatch_remediation_dry_run{target="aragora-prod"} 1.0' in metrics
            # The runbook's testing schedule, kept per scenario, on the status page.
            page = http_get(base + "/")[1]
            drills = page[page.index('<table id="drills">') :]
            assert "<td>Restore to staging (weekly)</td>" in drills
            assert "<td>WAL replay test (monthly)</td>" in drills
            assert '<td class="schedule">in ' in drills
            assert list(dumps.glob("aragora-*.dump"))
            assert list(archive.iterdir())
            # The one-shot command it prints runs exactly the daemon's checks.
            env_file = Path(re.search(r"env \$\(cat (\S+)\) ", printed).group(1))
            env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
            once = drwatch("check", "--config", "examples/aragora.yml", "--format", "json",
                           env={**os.environ, **env}, timeout=120)  # fmt: skip
            checks = {r["check"] for r in json.loads(once.stdout)["results"]}
            daemon_checks = set(re.findall(r'drwatch_check_up\{check="(\w+)"', metrics))
            assert checks == daemon_checks and len(checks) == 14, (checks, daemon_checks)
            assert "break archiving:" in printed and "CRITICAL once the PITR exposure" in printed
            # Day one is OK, but for what the sandbox seeds on purpose (a gap, orphan rows).
            doc = json.loads(http_get(base + "/status.json")[1])
            not_ok = {c["check"]: c["summary"] for c in doc["checks"] if c["status"] != "OK"}
            assert set(not_ok) <= {"verification"}, not_ok
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    assert proc.returncode == 0, out.read_text()
    assert "drwatch sandbox: stopped" in out.read_text()
    assert not dumps.exists()  # everything it started and wrote is gone
