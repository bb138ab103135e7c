"""Where a restore runs: a sandbox that sees none of drwatch's files, environment or processes.

A backup is code from whoever can write its store: a physical copy runs the backup's functions as
its own superuser, a dump runs them as the restoring role. So every program that restores or
serves a copy (initdb, postgres, pg_restore, pgBackRest, redis-server) runs isolated, in one of
three modes, the strongest that works here (`drills.scratch.isolation: auto`):

- `bwrap`: bubblewrap (unprivileged user namespaces; no root needed): new mount, PID, IPC, UTS
  and network namespaces, an environment built from nothing, `/usr` read-only, a fresh /proc,
  /dev and /tmp, and only the drill's own directories. It sees no file, process or variable of
  drwatch's and has no network but its own loopback (the staging server's or the backup tool's
  network where those need it); it dies with drwatch. As root, it runs as
  `drills.scratch.user` too.
- `user`: drwatch runs as root without bubblewrap: the programs run as `drills.scratch.user`,
  which cannot read drwatch's private files nor signal it, but sees the network and the host.
- `none`: neither: the programs run as drwatch's own user, beside its config and secrets. Formats
  that execute (plain SQL, physical copies) are then restored only with
  `drills.trust_backups: true`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pwd
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.config.drills import ScratchConfig
from core.errors import DrwatchError
from core.programs import BWRAP, child_env

log = logging.getLogger("drwatch.drills")

Mode = Literal["bwrap", "user", "none"]
MODES: tuple[Mode, ...] = ("bwrap", "user", "none")
# What a sandbox sees of /etc: the dynamic linker's cache; with a network, name resolution and CAs.
_ETC = ("ld.so.cache",)
_ETC_NETWORK = ("resolv.conf", "hosts", "nsswitch.conf", "services", "gai.conf", "ssl")
_PROBE_TIMEOUT = 10.0


class IsolationUnavailable(DrwatchError):
    """The isolation configured cannot be had here; the message says why and what to set."""


@dataclass(frozen=True)
class Isolation:
    mode: Mode
    account: pwd.struct_passwd  # who the restoring programs run as
    why: str  # why this mode (said at start and by `config validate`)
    _as_other_user: bool = field(default=False, repr=False)

    @property
    def other_user(self) -> pwd.struct_passwd | None:
        """The OS user restores run as when it is not drwatch's own (drwatch is root)."""
        return self.account if self._as_other_user else None

    @property
    def executes_untrusted(self) -> bool:
        """Whether a restore's code would run beside drwatch's own files (mode none)."""
        return self.mode == "none"

    def command(
        self,
        argv: Sequence[str],
        *,
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        network: bool = False,
        env: dict[str, str] | None = None,
    ) -> tuple[list[str], dict[str, Any]]:
        """The command line and the Popen arguments that run `argv` isolated: `writable` and
        `readable` are all it sees of the host's files besides /usr."""
        environment = child_env(**(env or {}))
        kwargs: dict[str, Any] = {"env": environment, "umask": 0o077}
        if self._as_other_user:
            kwargs.update(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        if self.mode != "bwrap":
            return list(argv), kwargs
        # bwrap hands the program its own environment (built from nothing, above): variables
        # never go on its command line, where `ps` shows them.
        program = Path(argv[0])
        if program.is_absolute() and not program.parent.is_relative_to("/usr"):
            readable = (*readable, program.parent)  # installed elsewhere: it is seen there
        prefix, fds = _bwrap_prefix(self.account, writable, readable, network)
        kwargs["pass_fds"] = fds
        return [*prefix, *argv], kwargs

    def run(
        self, argv: Sequence[str], *, timeout: float, **where: Any
    ) -> subprocess.CompletedProcess[bytes]:
        """A short program, isolated, its output captured; killed (with its sandbox) past
        `timeout`."""
        args, kwargs = self.command(argv, **where)
        with _closing(kwargs):
            return subprocess.run(args, capture_output=True, timeout=timeout, **kwargs)

    def popen(self, argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
        """A long-running program (a server): in a session of its own, so that it and what it
        starts are stopped together."""
        where = {k: options.pop(k) for k in ("writable", "readable", "network", "env")
                 if k in options}  # fmt: skip
        args, kwargs = self.command(argv, **where)
        with _closing(kwargs):
            return subprocess.Popen(args, start_new_session=True, **kwargs, **options)


@contextlib.contextmanager
def _closing(kwargs: dict[str, Any]) -> Iterator[None]:
    """The pipes that hand bubblewrap its /etc/passwd and /etc/group, closed once it started."""
    try:
        yield
    finally:
        for fd in kwargs.get("pass_fds", ()):
            with contextlib.suppress(OSError):
                os.close(fd)


def _data_fd(text: str) -> int:
    """A pipe's reading end holding `text` (a few hundred bytes: fits in the pipe's buffer)."""
    read, write = os.pipe()
    with os.fdopen(write, "w") as out:
        out.write(text)
    return read


def _bwrap_prefix(
    account: pwd.struct_passwd,
    writable: Sequence[Path],
    readable: Sequence[Path],
    network: bool,
) -> tuple[list[str], list[int]]:
    passwd = _data_fd(f"{account.pw_name}:x:{account.pw_uid}:{account.pw_gid}::/nonexistent:"
                      "/usr/sbin/nologin\n")  # fmt: skip
    group = _data_fd(f"{account.pw_name}:x:{account.pw_gid}:\n")
    args = [
        BWRAP.find() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    if network:
        args.append("--share-net")
    for top in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        path = Path("/", top)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in (*_ETC, *(_ETC_NETWORK if network else ())):
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += [
        "--ro-bind-data", str(passwd), "/etc/passwd", "--ro-bind-data", str(group), "/etc/group",
        # The sandbox's own, empty: nothing of the host's shared memory or temporary files.
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp",  # noqa: S108
    ]  # fmt: skip
    for path in readable:
        if not str(path).startswith("/usr/"):
            args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    return [*args, "--"], [passwd, group]


# Who runs a client (pg_restore into a staging server) when drwatch is root and no scratch user
# is set: it serves nothing and keeps nothing.
CLIENT_USER = "nobody"


def isolation(scratch: ScratchConfig, client_only: bool = False) -> Isolation:
    """The isolation drills get with these settings; IsolationUnavailable when the one asked for
    cannot be had (naming why and what to set). `client_only`: no server is started (a root
    drwatch without a scratch user runs the client as nobody)."""
    user = scratch.user or (CLIENT_USER if client_only and os.geteuid() == 0 else None)
    return _resolve(scratch.isolation, user, os.geteuid())


@functools.lru_cache(maxsize=16)
def _resolve(asked: str, user: str | None, euid: int) -> Isolation:
    as_root = euid == 0
    if as_root:
        if not user:
            raise IsolationUnavailable(
                "drwatch runs as root, and a restore never does (PostgreSQL refuses to): set "
                "drills.scratch.user (an unprivileged OS user, e.g. postgres), or "
                "drills.scratch.dsn (a staging server) for dumps"
            )
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            raise IsolationUnavailable(f"drills.scratch.user: no OS user {user!r}") from None
        if account.pw_uid == 0:
            raise IsolationUnavailable(f"drills.scratch.user: {user!r} is root")
    else:
        account = pwd.getpwuid(euid)
    if asked in ("auto", "bwrap"):
        broken = _bwrap_broken(account, as_root)
        if broken is None:
            why = "bubblewrap: no file, process, variable or network of drwatch's"
            return Isolation("bwrap", account, why, as_root)
        if asked == "bwrap":
            raise IsolationUnavailable(
                f"drills.scratch.isolation: bwrap does not work here: {broken}"
            )
        fallback = f"bubblewrap does not work here ({broken})"
    else:
        fallback = f"drills.scratch.isolation: {asked}"
    if as_root and asked != "none":
        why = f"{fallback}: restores run as OS user {account.pw_name}, not sandboxed"
        return Isolation("user", account, why, True)
    if asked == "user":
        raise IsolationUnavailable(
            "drills.scratch.isolation: user needs drwatch to run as root (to switch to "
            "drills.scratch.user); use bwrap, or none with drills.trust_backups: true"
        )
    who = f"OS user {account.pw_name}" if as_root else "drwatch's own user"
    why = f"{fallback}: restores run as {who}, not sandboxed, beside drwatch's files"
    return Isolation("none", account, why, as_root)


def _bwrap_broken(account: pwd.struct_passwd, as_root: bool) -> str | None:
    """Why bubblewrap cannot run a sandbox here, or None when it can (tried once)."""
    if BWRAP.find() is None:
        return "bwrap is not installed (Debian package bubblewrap)"
    probe = Isolation("bwrap", account, "", as_root)
    try:
        done = probe.run(["/bin/true"], timeout=_PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip()[:200] or f"exit {done.returncode}"
    return None


def client_only(scratch: ScratchConfig, scenarios: list[str]) -> bool:
    """Whether these drills start no server of their own (dumps into a staging server)."""
    return bool(scratch.dsn) and not {"pitr", "redis"} & set(scenarios)


def announce(scratch: ScratchConfig, clients: bool = False) -> Isolation | None:
    """Says which isolation drills get (logged at start and on reload); None when none can be
    had with these settings (the drills will say why)."""
    try:
        found = isolation(scratch, clients)
    except IsolationUnavailable as exc:
        log.warning("drills cannot be isolated: %s", exc)
        return None
    level = logging.INFO if found.mode == "bwrap" else logging.WARNING
    log.log(level, "drill isolation: %s (%s)", found.mode, found.why)
    if scratch.user and not found._as_other_user:
        log.warning(
            "drills.scratch.user (%s) is not used: drwatch is not root, so restores run as its "
            "own user%s", scratch.user, ", in a sandbox" if found.mode == "bwrap" else "",
        )  # fmt: skip
    return found
