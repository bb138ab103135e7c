"""deploy/: the systemd unit runs drwatch with flags the real command line accepts."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from exporter.cli.main import _parser

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
