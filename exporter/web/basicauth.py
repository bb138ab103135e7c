"""Basic-auth passwords checked without letting wrong ones cost the daemon.

bcrypt costs tens of milliseconds by design. So: a password that verified is kept in a cache of
its own (wrong guesses never flush it) and is checked without waiting behind anything; failures
are counted per client address, and a client past its allowance gets 429 without a bcrypt. One
bcrypt runs at a time, so a flood of guesses takes one core at most. Unverified work also has a
budget for all addresses together: a client with a recent failure gets 429 at once when the
failed clients' shared rate is spent. The bcrypt goes to the waiter whose address tried least
lately, so a scraper whose password is not verified yet goes ahead of guessers; a few wait at
once, for a bounded time, so connection slots are never all held by clients waiting for it. An
address that goes on past its 429s has its connections closed as they are accepted, before a
TLS handshake or a thread: a flood costs the accept loop, not the scrapes. A password longer
than bcrypt's 72 bytes cannot match any hash: refused without hashing (the
reference, Go's bcrypt in exporter-toolkit, refuses it too).
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
BCRYPT_WAIT_SECONDS = 2.0  # the most a client waits for the bcrypt
MAX_WAITING = 8  # clients waiting for the bcrypt at once (each holds a connection slot)
ATTEMPTS_COUNTED = 64  # per address: a waiter's rank
# Unverified attempts within the window past which connections are closed at accept: the
# allowance, a few 429s with Retry-After, then no more.
SHUN_AFTER = FAILURES_ALLOWED + 6
FAILED_CLIENTS_PER_SECOND = 4.0  # bcrypts for clients with recent failures, all together


class Outcome(enum.Enum):
    OK = "ok"
    DENIED = "denied"  # 401
    THROTTLED = "throttled"  # 429: too many failures from this address, or bcrypt is busy


class PasswordChecker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()  # unverified, by address
        self._bcrypt = _BcryptTurn()
        self._failed_budget = _TokenBucket(FAILED_CLIENTS_PER_SECOND)

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
            now = time.monotonic()
            rank = self._attempted(client, now)
            if self._throttled(client, now):
                return Outcome.THROTTLED
            clean = not self._failures.get(client)
        if len(secret) > MAX_PASSWORD_BYTES:
            return self._failed(client)
        if not clean and not self._failed_budget.take(now):
            return Outcome.THROTTLED
        if not self._bcrypt.acquire(rank):
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

    def shunned(self, client: str) -> bool:
        """Whether `client` keeps sending unverified requests past its 429s (Retry-After
        ignored): its connections are then closed when accepted, before a TLS handshake or a
        thread costs anything."""
        with self._lock:
            recent = self._attempts.get(client)
            if recent is None or len(recent) < SHUN_AFTER:
                return False
            return time.monotonic() - recent[-SHUN_AFTER] <= WINDOW_SECONDS

    def _attempted(self, client: str, now: float) -> int:
        """Counts an unverified attempt of `client`; how many it made within the window before
        this one (its place in the queue for the bcrypt)."""
        recent = self._attempts.setdefault(client, deque(maxlen=ATTEMPTS_COUNTED))
        while recent and now - recent[0] > WINDOW_SECONDS:
            recent.popleft()
        rank = len(recent)
        recent.append(now)
        self._attempts.move_to_end(client)
        while len(self._attempts) > MAX_CLIENTS:
            self._attempts.popitem(last=False)
        return rank

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


class _Waiter:
    def __init__(self, rank: int, seq: int) -> None:
        self.order = (rank, seq)
        self.evicted = False


class _BcryptTurn:
    """One bcrypt at a time, given first to the waiter whose address tried least lately (a
    scraper whose password is new goes ahead of guessers); a few wait at once, for a bounded
    time; a newcomer that tried less takes the place of the one that tried most."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._waiters: list[_Waiter] = []
        self._seq = 0

    def acquire(self, rank: int) -> bool:
        with self._cond:
            if not self._busy and not self._waiters:
                self._busy = True
                return True
            self._seq += 1
            me = _Waiter(rank, self._seq)
            if len(self._waiters) >= MAX_WAITING:
                worst = max(self._waiters, key=lambda w: w.order)
                if worst.order <= me.order:
                    return False
                worst.evicted = True
                self._waiters.remove(worst)
                self._cond.notify_all()
            self._waiters.append(me)
            deadline = time.monotonic() + BCRYPT_WAIT_SECONDS
            while not me.evicted:
                if not self._busy and me is min(self._waiters, key=lambda w: w.order):
                    self._waiters.remove(me)
                    self._busy = True
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiters.remove(me)
                    return False
                self._cond.wait(left)
            return False

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


class _TokenBucket:
    """`rate` takes a second on average, a second's worth at once at most."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self, now: float) -> bool:
        with self._lock:
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True
