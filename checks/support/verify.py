"""Integrity of a custom-format dump: a full streamed read through `pg_restore -f /dev/null`.

`pg_restore --list` only reads the table of contents and accepts truncated or bit-flipped dumps;
decompressing and replaying every data block catches both. The dump is streamed from its store
into both processes at once (one read, never held in memory); their output goes to unlinked
temporary files, so nothing is left in temp space whatever happens.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from checks.support.stores import Store

# One verification at a time, whatever the number of targets: it is the heaviest thing drwatch does.
_ONE_AT_A_TIME = threading.Lock()


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


class VerificationTimedOut(VerificationIncomplete):
    def __init__(self, key: str) -> None:
        super().__init__(f"verification of {key} timed out")


def pg_restore_binary() -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_restore"), reverse=True):
        return str(candidate)
    return "pg_restore"


def _first_line(stream: IO[bytes]) -> str:
    stream.seek(0)
    for line in stream.read(4096).decode(errors="replace").splitlines():
        if line.strip():
            return line.strip().removeprefix("pg_restore: ")
    return ""


def verify_dump(store: Store, key: str, mode: str, deadline: float) -> Verdict:
    """Reads `key` through pg_restore; `mode` "full" replays every block, "toc" only the TOC."""
    wait = max(0.0, deadline - time.monotonic())
    if not _ONE_AT_A_TIME.acquire(timeout=wait):
        raise VerificationBusy
    try:
        return _verify(store, key, mode, deadline)
    finally:
        _ONE_AT_A_TIME.release()


def _verify(store: Store, key: str, mode: str, deadline: float) -> Verdict:
    started = time.monotonic()
    binary = pg_restore_binary()
    with (
        tempfile.TemporaryFile() as toc_out,
        tempfile.TemporaryFile() as toc_err,
        tempfile.TemporaryFile() as full_err,
    ):
        lister = subprocess.Popen(
            [binary, "--list"], stdin=subprocess.PIPE, stdout=toc_out, stderr=toc_err
        )
        readers = [lister]
        if mode == "full":
            readers.append(
                subprocess.Popen(
                    [binary, "-f", "/dev/null"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=full_err,
                )
            )
        try:
            bytes_read = _feed(store, key, readers, deadline)
            codes = [p.wait(max(1.0, deadline - time.monotonic())) for p in readers]
        except (TimeoutError, subprocess.TimeoutExpired):
            _kill(readers)
            raise VerificationTimedOut(key) from None
        except BaseException:
            _kill(readers)
            raise
        duration = time.monotonic() - started
        if codes[0] != 0:
            reason = f"table of contents unreadable: {_first_line(toc_err)}"
            return Verdict(False, reason, None, bytes_read, duration)
        toc_out.seek(0)
        entries = sum(
            1 for line in toc_out.read().splitlines() if line.strip() and not line.startswith(b";")
        )
        if len(codes) > 1 and codes[1] != 0:
            reason = f"full read failed: {_first_line(full_err)}"
            return Verdict(False, reason, entries, bytes_read, duration)
        reason = "full read ok" if len(readers) > 1 else "table of contents ok"
        return Verdict(True, reason, entries, bytes_read, duration)


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


def _kill(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        proc.kill()
        proc.wait()


def verify_rdb(store: Store, key: str, deadline: float) -> Verdict:
    """Streams an RDB snapshot to a temporary file (removed whatever happens) and runs
    redis-check-rdb on it: it checks every record and the trailing CRC64."""
    wait = max(0.0, deadline - time.monotonic())
    if not _ONE_AT_A_TIME.acquire(timeout=wait):
        raise VerificationBusy
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="drwatch-rdb-") as scratch:
            path = Path(scratch) / "snapshot.rdb"
            bytes_read = 0
            with open(path, "wb") as sink:
                for block in store.chunks(key):
                    sink.write(block)
                    bytes_read += len(block)
                    if time.monotonic() > deadline:
                        raise VerificationTimedOut(key)
            try:
                proc = subprocess.run(
                    ["redis-check-rdb", str(path)],
                    capture_output=True,
                    text=True,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
            except subprocess.TimeoutExpired:
                raise VerificationTimedOut(key) from None
        duration = time.monotonic() - started
        if proc.returncode == 0:
            return Verdict(True, "redis-check-rdb ok", None, bytes_read, duration)
        return Verdict(
            False,
            f"redis-check-rdb: {_rdb_problem(proc.stdout + proc.stderr)}",
            None,
            bytes_read,
            duration,
        )
    finally:
        _ONE_AT_A_TIME.release()


def _rdb_problem(output: str) -> str:
    # redis-check-rdb prints "--- RDB ERROR DETECTED ---", then "[offset N] <what went wrong>".
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "RDB ERROR DETECTED" in line and i + 1 < len(lines):
            return lines[i + 1].split("]", 1)[-1].strip()
    return "the snapshot is corrupt"
