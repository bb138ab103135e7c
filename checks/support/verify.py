"""Integrity verification of backups: a custom-format dump read in full through pg_restore, an
RDB snapshot through redis-check-rdb, a pg_basebackup tar backup through pg_verifybackup.

`pg_restore --list` only reads the table of contents and accepts truncated or bit-flipped dumps;
decompressing and replaying every data block (`pg_restore -f /dev/null`) catches both. The dump
is streamed from its store into both processes at once (one read, never held in memory) and
their output comes back through pipes: nothing is written to temporary space. An RDB snapshot is
copied to an unlinked temporary file that redis-check-rdb opens through /proc, so nothing is left
behind even if drwatch is killed. pg_verifybackup (PostgreSQL 15) reads plain backups only: a
tar backup is unpacked into a private temporary directory, removed afterwards. A verification
that cannot finish (busy, timed out, no space)
raises VerificationIncomplete: that is never a verdict about the backup.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from checks.support.plaindump import PlainReadTimedOut, is_plain, read_plain
from checks.support.stores import Store
from core.programs import PG_RESTORE, PG_VERIFYBACKUP, REDIS_CHECK_RDB, child_env, program_path

# One verification at a time, whatever the number of targets: it is the heaviest thing drwatch does.
_ONE_AT_A_TIME = threading.Lock()
# The verifying processes alive right now, so a stopping daemon can end them.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    toc_entries: int | None
    bytes_read: int
    duration_seconds: float


class VerificationIncomplete(Exception):
    """No verdict: the verification could not finish, which says nothing about the backup."""


class VerificationBusy(VerificationIncomplete):
    """Another verification holds the slot for longer than this run can wait."""

    def __init__(self) -> None:
        super().__init__("another verification is still running")


class DumpTooNew(VerificationIncomplete):
    """The dump's archive format is newer than this pg_restore reads: drwatch's limit, not the
    backup's fault, so never a failed verdict."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(
            f"{key} was written by a newer pg_dump than {pg_restore_version()} reads ({detail}): "
            f"install the PostgreSQL client of the dump's server version or newer"
        )


class VerificationTimedOut(VerificationIncomplete):
    def __init__(self, key: str) -> None:
        super().__init__(f"verification of {key} timed out")


class NoSpace(VerificationIncomplete):
    def __init__(self, key: str, where: str) -> None:
        super().__init__(f"no space left in {where} to verify {key}")


def pg_restore_binary() -> str:
    return PG_RESTORE.find() or program_path(PG_RESTORE.name)


@functools.cache
def pg_restore_version() -> str:
    """`pg_restore (PostgreSQL) 15.x`, as the binary says of itself."""
    try:
        out = subprocess.run(
            [pg_restore_binary(), "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "pg_restore"
    return out.stdout.strip() or "pg_restore"


@functools.cache
def pg_verifybackup_version() -> str:
    """`pg_verifybackup (PostgreSQL) 15.x`, as the binary says of itself."""
    try:
        out = subprocess.run(
            [PG_VERIFYBACKUP.find() or PG_VERIFYBACKUP.name, "--version"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "pg_verifybackup"
    return out.stdout.strip() or "pg_verifybackup"


def manifest_versions_read() -> int:
    """The newest backup_manifest version this pg_verifybackup reads: 2 from PostgreSQL 17."""
    match = re.search(r"\) (\d+)", pg_verifybackup_version())
    return 2 if match and int(match[1]) >= 17 else 1


def terminate_all() -> None:
    """Kills every verifying process (the daemon is stopping)."""
    with _RUNNING_LOCK:
        for proc in _RUNNING:
            with contextlib.suppress(OSError):
                proc.kill()


def _spawn(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    # A checking program gets an environment built from nothing, never drwatch's.
    proc = subprocess.Popen(args, env=child_env(), **kwargs)  # type: ignore[call-overload]
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    return proc  # type: ignore[no-any-return]


def _reap(processes: list[subprocess.Popen[bytes]], kill: bool) -> None:
    for proc in processes:
        if kill:
            proc.kill()
        proc.wait()
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)


class _Drain(threading.Thread):
    """Reads a process's output as it comes: counts its lines, keeps its first and last kB."""

    KEEP = 4096

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines = 0  # not counting pg_restore's ";" comments
        self.head = b""
        self.tail = b""
        self.start()

    def run(self) -> None:
        for line in self.stream:
            if line.strip() and not line.startswith(b";"):
                self.lines += 1
            if len(self.head) < self.KEEP:
                self.head += line[: self.KEEP - len(self.head)]
            self.tail = (self.tail + line)[-self.KEEP :]

    def first_line(self) -> str:
        self.join(5)
        for line in self.head.decode(errors="replace").splitlines():
            if line.strip():
                return line.strip().removeprefix("pg_restore: ")
        return ""


def _slot(deadline: float) -> None:
    if not _ONE_AT_A_TIME.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise VerificationBusy


@contextmanager
def one_at_a_time(deadline: float) -> Iterator[None]:
    """The one verification slot, waited for until `deadline` (VerificationBusy after)."""
    _slot(deadline)
    try:
        yield
    finally:
        _ONE_AT_A_TIME.release()


def verify_dump(store: Store, key: str, mode: str, deadline: float, cap: int) -> Verdict:
    """Reads `key` through pg_restore; `mode` "full" replays every block, "toc" only the TOC.
    A plain SQL dump (`*.sql[.gz|.zst|...]`) has no TOC: it is read whole in either mode, and
    fails past `cap` bytes once decompressed."""
    _slot(deadline)
    try:
        if is_plain(key):
            started = time.monotonic()
            try:
                ok, reason, read = read_plain(store, key, deadline, cap)
            except PlainReadTimedOut:
                raise VerificationTimedOut(key) from None
            return Verdict(ok, reason, None, read, time.monotonic() - started)
        return _verify(store, key, mode, deadline)
    finally:
        _ONE_AT_A_TIME.release()


def _verify(store: Store, key: str, mode: str, deadline: float) -> Verdict:
    started = time.monotonic()
    binary = pg_restore_binary()
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    readers = [_spawn([binary, "--list"], **pipes)]
    if mode == "full":
        readers.append(_spawn([binary, "-f", "/dev/null"], **pipes))
    drains = [(_Drain(p.stdout), _Drain(p.stderr)) for p in readers]  # type: ignore[arg-type]
    try:
        bytes_read = _feed(store, key, readers, deadline)
        codes = [p.wait(max(1.0, deadline - time.monotonic())) for p in readers]
    except (TimeoutError, subprocess.TimeoutExpired):
        _reap(readers, kill=True)
        raise VerificationTimedOut(key) from None
    except BaseException:
        _reap(readers, kill=True)
        raise
    _reap(readers, kill=False)
    duration = time.monotonic() - started
    (toc, toc_err), *full = drains
    if codes[0] != 0:
        if "unsupported version" in toc_err.first_line():
            raise DumpTooNew(key, toc_err.first_line().rpartition("error: ")[2])
        reason = f"table of contents unreadable: {toc_err.first_line()}"
        return Verdict(False, reason, None, bytes_read, duration)
    toc.join(5)
    if full and codes[1] != 0:
        reason = f"full read failed: {full[0][1].first_line()}"
        return Verdict(False, reason, toc.lines, bytes_read, duration)
    reason = "full read ok" if full else "table of contents ok"
    return Verdict(True, reason, toc.lines, bytes_read, duration)


def _feed(store: Store, key: str, readers: list[subprocess.Popen[bytes]], deadline: float) -> int:
    """Streams `key` into every reader at once (one read of the store); the bytes read."""
    bytes_read = 0
    listening = list(readers)
    for block in store.chunks(key):
        bytes_read += len(block)
        if time.monotonic() > deadline:
            raise TimeoutError
        for proc in list(listening):
            assert proc.stdin is not None
            try:
                proc.stdin.write(block)
            except BrokenPipeError:  # --list stops after the TOC; a failed read stops early
                listening.remove(proc)
    for proc in listening:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    return bytes_read


def verify_rdb(store: Store, key: str, deadline: float) -> Verdict:
    """Copies an RDB snapshot to an unlinked temporary file and runs redis-check-rdb on it: it
    checks every record and the trailing CRC64."""
    _slot(deadline)
    started = time.monotonic()
    try:
        with tempfile.TemporaryFile(prefix="drwatch-rdb-") as copy:
            bytes_read = copy_object(store, key, copy, deadline)
            path = f"/proc/self/fd/{copy.fileno()}"  # the child's own, inherited descriptor
            code, output = run_checker(
                [program_path(REDIS_CHECK_RDB.name), path], key, deadline, pass_fds=(copy.fileno(),)
            )
        duration = time.monotonic() - started
        if code == 0:
            return Verdict(True, "redis-check-rdb ok", None, bytes_read, duration)
        problem = _rdb_problem(output.tail.decode(errors="replace"))
        return Verdict(False, f"redis-check-rdb: {problem}", None, bytes_read, duration)
    finally:
        _ONE_AT_A_TIME.release()


def run_checker(args: list[str], key: str, deadline: float, **popen: object) -> tuple[int, _Drain]:
    """A checking program run to its end or the deadline: its exit code and output."""
    proc = _spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    output = _Drain(proc.stdout)  # type: ignore[arg-type]
    try:
        code = proc.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise VerificationTimedOut(key) from None
    finally:
        _reap([proc], kill=proc.poll() is None)
    output.join(5)
    return code, output


def copy_object(store: Store, key: str, sink: IO[bytes], deadline: float) -> int:
    bytes_read = 0
    try:
        for block in store.chunks(key):
            sink.write(block)
            bytes_read += len(block)
            if time.monotonic() > deadline:
                raise VerificationTimedOut(key)
        sink.flush()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise NoSpace(key, tempfile.gettempdir()) from None
        raise
    return bytes_read


def _rdb_problem(output: str) -> str:
    # redis-check-rdb prints "--- RDB ERROR DETECTED ---", then "[offset N] <what went wrong>".
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "RDB ERROR DETECTED" in line and i + 1 < len(lines):
            return lines[i + 1].split("]", 1)[-1].strip()
    return "the snapshot is corrupt"
