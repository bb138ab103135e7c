"""deploy/: the systemd unit runs drwatch with flags the real command line accepts."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from exporter.cli.main import _parser
from sandbox.pgcluster import PgCluster
from tests.helpers import reachable, write_config

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "drwatch.service"


def _directives(name: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith(f"{name}=")
    ]


def test_the_unit_runs_the_daemon_with_flags_the_cli_accepts() -> None:
    (exec_start,) = _directives("ExecStart")
    binary, *args = shlex.split(exec_start)
    assert binary.endswith("/drwatch")
    parsed = _parser().parse_args(args)  # exits (SystemExit) on any flag drwatch lacks
    assert parsed.command == "run" and parsed.config == "/etc/drwatch/drwatch.yml"
    assert parsed.listen_address == ":9839" and parsed.log_format == "json"
    (pre,) = _directives("ExecStartPre")
    validate = _parser().parse_args(shlex.split(pre)[1:])
    assert validate.command == "config" and validate.file == parsed.config
    assert _directives("ExecReload") == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads
    assert _directives("StateDirectory") == ["drwatch"]
    assert _directives("User") == ["drwatch"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    drwatch = shutil.which("drwatch", path=str(Path(sys.executable).parent))
    assert drwatch is not None
    unit = tmp_path / "drwatch.service"  # the same unit, with the drwatch this venv installed
    unit.write_text(UNIT.read_text().replace("/opt/drwatch/bin/drwatch", drwatch))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "drwatch.service" not in proc.stderr, proc.stderr  # no complaint about the unit


def test_the_unit_allows_the_namespaces_a_drill_sandbox_needs() -> None:
    """bubblewrap's --unshare-all asks for these; RestrictNamespaces=yes would refuse them all
    and every drill would run unisolated."""
    (allowed,) = _directives("RestrictNamespaces")
    assert set(allowed.split()) == {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"}
    assert _directives("NoNewPrivileges") == ["yes"]  # bubblewrap needs no setuid bit


def test_a_drill_runs_sandboxed_as_the_units_plain_user(tmp_path: Path) -> None:
    """As the unit runs drwatch (User=, no capability, no new privileges): a plain user's
    drill restores in a bubblewrap sandbox and passes; it never needed root."""
    assert FLOOR_PYTHON.exists(), "make test builds .venv-floor before the suite"
    source = PgCluster().init(None).start()
    closed = _traversable(ROOT)  # a checkout in a 0700 directory (mktemp -d): for this test
    try:
        source.execute("CREATE DATABASE app")
        source.execute("CREATE TABLE debates AS SELECT g AS id, now() AS created_at "
                       "FROM generate_series(1, 100) g", "app")  # fmt: skip
        store = source.backups / "dumps"
        source.dump("app", store)
        reachable(store)
        state = tmp_path / "state"
        state.mkdir()
        reachable(state)
        os.chown(state, UNIT_USER.pw_uid, UNIT_USER.pw_gid)
        config = write_config(tmp_path / "c.yml", [{
            "name": "app", "postgres": {"dsn": source.dsn("app")},
            "backups": {"store": f"file://{store}/"},
            "drills": {"full_restore": {}},
        }], state_dir=str(state))  # fmt: skip
        config.chmod(0o644)
        proc = subprocess.run(
            ["setpriv", f"--reuid={UNIT_USER.pw_uid}", f"--regid={UNIT_USER.pw_gid}",
             "--clear-groups", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all",
             str(FLOOR_PYTHON), "-m", "exporter", "drill", "--config", str(config),
             "--format", "json"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
            env={"PATH": os.environ["PATH"]},
        )  # fmt: skip
    finally:
        for path, mode in closed:
            path.chmod(mode)
        source.destroy()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (drill,) = json.loads(proc.stdout)["drills"]
    assert drill["status"] == "OK", drill["summary"]
    assert drill["values"]["isolation"] == "bwrap"


def _traversable(path: Path) -> list[tuple[Path, int]]:
    """`path` and its parents made traversable by other users (o+x, never readable or
    writable); (each changed, its mode before) to put back."""
    changed = []
    for each in (path, *path.parents):
        mode = each.stat().st_mode & 0o7777
        if not mode & 0o001:
            each.chmod(mode | 0o001)
            changed.append((each, mode))
    return changed


# A plain user as the unit's User=. The test venv's interpreter may lie where that user cannot
# reach (/root): the floor venv's is Debian's own, with drwatch installed (`make test` makes it
# before the suite runs).
UNIT_USER = pwd.getpwnam("postgres")
FLOOR_PYTHON = ROOT / ".venv-floor" / "bin" / "python"
