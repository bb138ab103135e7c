"""Append-only records in state_dir (drill history, the per-minute exposure record): one JSON
object a line, bounded by age and size, read back line by line through a schema.

A line that does not fit (a torn write at a crash, a hand edit, an older or newer drwatch's
shape it cannot read) is skipped and counted, never a crash and never the whole record lost.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from core.chain import chain, last_line
from core.statefile import STATE_WRITES

log = logging.getLogger("drwatch.journal")
T = TypeVar("T")
PRUNE_EVERY = 3600.0  # age pruning at most hourly: it rewrites the file
MAX_LINE_BYTES = 1 << 20
MAX_CLOCK_STEP = 3600.0  # more than NTP slews: the wall clock was set, not corrected


class Journal(Generic[T]):
    def __init__(
        self,
        path: Path,
        schema: TypeAdapter[T],
        time_of: Callable[[T], float],
        keep: float,
        max_bytes: int,
        chained: bool = False,
    ) -> None:
        self.path = path
        # Each line holds the previous line's SHA-256 (core.chain): an edit is found later.
        self.chained = chained
        self.schema = schema
        self.time_of = time_of
        self.keep = keep
        self.max_bytes = max_bytes
        self.skipped = 0  # lines of the last read that did not fit
        self._lock = threading.Lock()
        self._pruned_at = 0.0
        # A wall clock that never steps: what age is judged by. A clock set 400 days ahead
        # for a while would otherwise age out the whole record in one prune.
        self._wall0, self._steady0 = time.time(), time.monotonic()
        self._stepped = False

    def append(self, entries: Iterable[T]) -> None:
        objects = [self.schema.dump_python(e, mode="json") for e in entries]
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "r+b") as handle:
                    # Another drwatch (a `drwatch drill` by hand) may append to the same file:
                    # the link to the last line and the new lines are written under one lock.
                    fcntl.flock(handle, fcntl.LOCK_EX)
                    if self.chained:
                        handle.write(chain(last_line(handle), objects))
                    else:
                        handle.write(b"".join(json.dumps(o).encode() + b"\n" for o in objects))
                size = self.path.stat().st_size
            except OSError as exc:
                STATE_WRITES.note(self.path, exc)  # said once, not at every append
                return
            STATE_WRITES.note(self.path, None)
            now = self._steady_now()
            if size > self.max_bytes or now - self._pruned_at > PRUNE_EVERY:
                self._prune(now)

    def _steady_now(self) -> float:
        """The time to age entries by: the wall clock, unless it stepped since this journal
        was opened (then the steady clock's reckoning, the earlier of the two); a step is said
        once."""
        wall = time.time()
        steady = self._wall0 + time.monotonic() - self._steady0
        stepped = abs(wall - steady) > MAX_CLOCK_STEP
        if stepped and not self._stepped:
            log.warning(
                "%s: the clock stepped %+.0f s since drwatch started: entries are aged by "
                "drwatch's steady clock, nothing dropped for the step", self.path, wall - steady,
            )  # fmt: skip
        self._stepped = stepped
        return min(wall, steady) if stepped else wall

    def read(self, since: float = 0.0) -> list[T]:
        with self._lock:
            entries, self.skipped = self._read_all()
        return [e for e in entries if self.time_of(e) >= since]

    def iterate(self, since: float, time_hint: Callable[[bytes], float]) -> Iterator[T]:
        """The entries from `since` on, streamed (a big record is never held whole); lines
        `time_hint` puts before `since` are skipped unparsed. Not under the lock: an append
        meanwhile adds lines at the end, a prune replaces the file (this reads the old one)."""
        self.skipped = 0
        try:
            with open(self.path, "rb") as handle:
                for line in handle:
                    try:
                        if time_hint(line) < since:
                            continue
                        entry = self.schema.validate_json(line)
                    except (ValueError, ValidationError):
                        self.skipped += 1
                        continue
                    if self.time_of(entry) >= since:
                        yield entry
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc.strerror)

    def _read_all(self) -> tuple[list[T], int]:
        entries: list[T] = []
        skipped = 0
        try:
            with open(self.path, "rb") as handle:
                for line in handle:
                    if len(line) > MAX_LINE_BYTES:
                        skipped += 1
                        continue
                    try:
                        entries.append(self.schema.validate_python(json.loads(line)))
                    except (ValueError, ValidationError):
                        skipped += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc.strerror)
        return entries, skipped

    def _time(self, line: bytes) -> float | None:
        try:
            return self.time_of(self.schema.validate_json(line))
        except (ValueError, ValidationError):
            return None

    def _prune(self, now: float) -> None:
        """Entries older than `keep` dropped, then the oldest until three quarters of
        `max_bytes` remain (room to append before the next rewrite). Lines are in time order:
        when the first is young enough and the file small enough, nothing is rewritten; else
        the old lines are found (only they are parsed) and the rest copied as it is, streamed.
        `now` is the steady clock's (see append): a clock step does not age the record."""
        self._pruned_at = now
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as handle:
                first = self._time(handle.readline())
                if size <= self.max_bytes and first is not None and now - first <= self.keep:
                    return
                handle.seek(0)
                lengths, by_age = self._old_lines(handle, now)
            by_size, remaining = 0, size
            while by_size < len(lengths) and remaining > self.max_bytes * 3 // 4:
                remaining -= lengths[by_size]
                by_size += 1
            self._rewrite(max(by_age, by_size))
        except OSError as exc:
            log.warning("cannot prune %s: %s", self.path, exc.strerror)

    def _old_lines(self, handle: IO[bytes], now: float) -> tuple[list[int], int]:
        """Every line's length, and how many lines from the start are older than `keep`."""
        lengths: list[int] = []
        old, young = 0, False
        for line in handle:
            lengths.append(len(line))
            if not young:
                when = self._time(line)
                young = when is not None and now - when <= self.keep
                old = len(lengths) - (1 if young else 0)
        return lengths, old

    def _rewrite(self, dropped: int) -> None:
        """The file without its first `dropped` lines, replaced atomically; nothing left
        behind when it cannot be written."""
        if dropped == 0:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with open(self.path, "rb") as source, os.fdopen(fd, "wb") as sink:
                for number, line in enumerate(source):
                    if number >= dropped:
                        sink.write(line)
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
