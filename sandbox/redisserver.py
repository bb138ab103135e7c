"""A throwaway redis-server on a free loopback port, as the `redis` OS user when run as root
(so a data directory made unwritable really is unwritable)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from sandbox.pgcluster import free_port, wait_until


def _server_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix, uid and gid to run redis-server as when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("redis", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], pw.pw_uid, pw.pw_gid
    return [], None, None


class RedisServer:
    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="drwatch-redis-"))
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.password: str | None = None
        self.prefix, self.uid, self.gid = _server_user()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.dir = self.root / "data"
        self.log = self.root / "redis.log"
        self.log.touch()
        self._give(self.log)

    def _give(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(
        self, *args: str, save: str = "", appendonly: str = "no", password: str | None = None
    ) -> RedisServer:
        self.password = password
        if password:
            args = (*args, "--requirepass", password)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._give(self.dir)
        self.proc = subprocess.Popen(
            [
                *self.prefix, "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", save, "--appendonly", appendonly,
                "--daemonize", "no", "--logfile", str(self.log), *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # runuser forks: signals go to the whole group
        )  # fmt: skip
        wait_until(lambda: self.client().ping(), 20, what=f"redis on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, *args: str, save: str = "", appendonly: str = "no") -> RedisServer:
        self.stop()
        return self.start(*args, save=save, appendonly=appendonly)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
