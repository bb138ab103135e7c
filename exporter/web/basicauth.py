"""Basic-auth passwords checked without letting wrong ones cost the daemon.

bcrypt costs tens of milliseconds by design. So: a password that verified is kept in a cache of
its own (wrong guesses never flush it); failures are counted per client address, and a client
past its allowance gets 429 without a bcrypt; one bcrypt runs at a time, so a flood of guesses
takes one core at most and scrapes with a verified password never wait for it. A password
longer than bcrypt's 72 bytes cannot match any hash: refused without hashing (the reference,
Go's bcrypt in exporter-toolkit, refuses it too).
"""

from __future__ import annotations

import enum
import hashlib
import threading
import time
from collections import OrderedDict, deque

import bcrypt

MAX_PASSWORD_BYTES = 72
FAILURES_ALLOWED = 10  # per client address within WINDOW_SECONDS
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 4096  # failure counters kept (the oldest forgotten first)
MAX_VERIFIED = 1024  # verified (user, password, hash) kept
BCRYPT_WAIT_SECONDS = 2.0


class Outcome(enum.Enum):
    OK = "ok"
    DENIED = "denied"  # 401
    THROTTLED = "throttled"  # 429: too many failures from this address, or bcrypt is busy


class PasswordChecker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._bcrypt = threading.Semaphore(1)

    def forget(self) -> None:
        """A new web config: hashes may have changed."""
        with self._lock:
            self._verified.clear()

    def check(
        self, users: dict[str, bytes], unknown: bytes, user: str, password: str, client: str
    ) -> Outcome:
        hashed = users.get(user, unknown)
        secret = password.encode()
        key = hashlib.sha256(b"\0".join((user.encode(), secret, hashed))).digest()
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return Outcome.OK
            if self._throttled(client, time.monotonic()):
                return Outcome.THROTTLED
        if len(secret) > MAX_PASSWORD_BYTES:
            return self._failed(client)
        if not self._bcrypt.acquire(timeout=BCRYPT_WAIT_SECONDS):
            return Outcome.THROTTLED
        try:
            # An unknown user pays for a bcrypt too: the time says nothing about which exist.
            ok = bcrypt.checkpw(secret, hashed) and user in users
        except ValueError:
            ok = False
        finally:
            self._bcrypt.release()
        if not ok:
            return self._failed(client)
        with self._lock:
            self._verified[key] = None
            while len(self._verified) > MAX_VERIFIED:
                self._verified.popitem(last=False)
        return Outcome.OK

    def _throttled(self, client: str, now: float) -> bool:
        recent = self._failures.get(client)
        if recent is None:
            return False
        while recent and now - recent[0] > WINDOW_SECONDS:
            recent.popleft()
        return len(recent) >= FAILURES_ALLOWED

    def _failed(self, client: str) -> Outcome:
        with self._lock:
            recent = self._failures.setdefault(client, deque(maxlen=FAILURES_ALLOWED))
            recent.append(time.monotonic())
            self._failures.move_to_end(client)
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
        return Outcome.DENIED
