"""The Dockerfile: it installs every program drwatch runs, its build step builds drwatch, and
it runs the daemon with flags the command line accepts. (No Docker engine runs here: hadolint
lints it in `make lint`, these tests hold it to the code.)"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.programs import PROGRAMS
from exporter.cli.main import _parser
from exporter.web.server import parse_listen_address
from sandbox.pgcluster import wait_until
from tests.daemon import DaemonProcess
from tests.helpers import write_config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_the_image_installs_every_program_drwatch_runs() -> None:
    installs = [
        args for word, args in _final_stage() if word == "RUN" and "apt-get install" in args
    ]
    assert len(installs) == 1, installs
    packages = set(shlex.split(installs[0].split("apt-get install", 1)[1].split("&&")[0]))
    for program in PROGRAMS:
        assert program.package in packages, f"{program.name} needs {program.package}"


def _owner(path: str) -> str | None:
    """The Debian package that installed `path` (dpkg -S): the name itself first (redis-server
    is a link to redis-check-rdb, and each package ships its own name), then its merged-/usr
    twin, then where the links lead."""
    candidates: list[str] = []
    for p in (path, os.path.realpath(path)):
        twin = p.removeprefix("/usr") if p.startswith("/usr/") else "/usr" + p
        candidates += [p, twin]
    for candidate in candidates:
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_each_program_is_declared_with_the_package_that_really_ships_it(program) -> None:  # type: ignore[no-untyped-def]
    """The table in core/programs.py against dpkg's own file lists on this machine, where the
    tests install every program (redis-server is in redis-server, not redis-tools)."""
    path = program.find()
    assert path is not None, f"{program.name} is not installed here"
    owner = _owner(path)
    assert owner is not None, f"dpkg knows no package for {path}"
    # postgresql-client stands for postgresql-client-<newest version>, as Debian's metapackage
    assert owner == program.package or owner.startswith(program.package + "-"), (
        f"{program.name} ({path}) is shipped by {owner}, declared as {program.package}"
    )


def test_the_image_runs_the_daemon_as_a_user_with_flags_the_cli_accepts() -> None:
    final = dict(_final_stage())  # one of each instruction in the final stage
    entrypoint, cmd = json.loads(final["ENTRYPOINT"]), json.loads(final["CMD"])
    assert entrypoint == ["drwatch"]
    parsed = _parser().parse_args(cmd)
    assert parsed.command == "run" and parsed.config == "/etc/drwatch/drwatch.yml"
    host, port = parse_listen_address(parsed.listen_address)
    assert host == "0.0.0.0" and final["EXPOSE"] == str(port)
    assert final["USER"] not in ("root", "0")
    assert final["VOLUME"] == "/var/lib/drwatch"  # the config's default state_dir
    health = _parser().parse_args(json.loads(final["HEALTHCHECK"].split("CMD", 1)[1])[1:])
    assert health.command == "healthcheck" and health.listen_address == parsed.listen_address


def test_the_health_check_route_answers(tmp_path: Path) -> None:
    """The HEALTHCHECK's own command, against a running drwatch."""
    final = dict(_final_stage())
    command = json.loads(final["HEALTHCHECK"].split("CMD", 1)[1])
    assert command[:3] == ["drwatch", "healthcheck", "--web.listen-address"]
    target = {"name": "cache", "redis": {"url": "redis://127.0.0.1:1/0"}}  # nothing there
    config = write_config(tmp_path / "drwatch.yml", [target], state_dir=str(tmp_path / "state"))
    daemon = DaemonProcess(config, tmp_path)
    try:
        wait_until(lambda: daemon.get("/-/healthy")[0] == 200, 30, what="drwatch up")
        probe = [str(Path(sys.executable).parent / "drwatch"), *command[1:3], f":{daemon.port}"]
        assert subprocess.run(probe, timeout=30).returncode == 0
        daemon.stop()
        assert subprocess.run(probe, timeout=30).returncode != 0
    finally:
        daemon.stop()


def test_the_build_stage_builds_drwatch(tmp_path: Path) -> None:
    """The build stage's `pip wheel` on what `COPY . .` sends (the tracked files)."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    source = tmp_path / "src"
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((ROOT / name).read_bytes())
    (build,) = [args for word, args in _instructions() if word == "RUN" and "pip wheel" in args]
    args = shlex.split(build)
    args[args.index("/wheels")] = str(tmp_path / "wheels")
    subprocess.run(
        [sys.executable, "-m", *args[:1], *args[1:], "--no-deps"],
        cwd=source, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheels").glob("drwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("core/programs.py", "checks/registry.py", "exporter/cli/main.py"):
        assert module in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "drwatch = exporter.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
