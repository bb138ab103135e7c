"""`drwatch remediate`: the table of what remediation would do, and --execute only when allowed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sandbox.pgcluster import PgCluster
from tests.helpers import drwatch
from tests.remediation import (
    Sessions,
    all_pids,
    idle_action,
    wait_aged,
    wait_gone,
    write_config,
)


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


def test_remediate_says_why_nothing_qualifies(primary: PgCluster, tmp_path: Path) -> None:
    actions = {
        "terminate_idle_connections": idle_action(when_utilization_above=0.9),
        "terminate_idle_in_transaction": {"idle_for": "15m"},
    }
    quiet = _remediate(write_config(tmp_path, primary, {"actions": actions}))
    assert quiet.returncode == 0, quiet.stderr
    rows = quiet.stdout.splitlines()
    assert rows[0].split()[:3] == ["TARGET", "ACTION", "OUTCOME"]
    assert re.search(
        r"^db +terminate_idle_connections +skipped +not needed: utilisation \d+% below 90%$",
        quiet.stdout,
        re.M,
    ), quiet.stdout
    assert "not needed: no session idle in transaction over 900s" in quiet.stdout
