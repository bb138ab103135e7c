"""Integrity verification: one at a time, whatever the number of targets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from checks.support.stores import FileStore
from checks.support.verify import VerificationBusy, verify_dump


def test_one_verification_at_a_time(dumps: dict[str, bytes]) -> None:
    slow = _SlowStore(dumps["good"])
    first: list[object] = []
    worker = threading.Thread(
        target=lambda: first.append(verify_dump(slow, "a.dump", "full", time.monotonic() + 30))
    )
    worker.start()
    assert slow.reading.wait(10)
    with pytest.raises(VerificationBusy):
        verify_dump(FileStore("file:///", Path("/")), "b.dump", "full", time.monotonic() + 0.5)
    slow.release.set()
    worker.join(30)
    assert first and first[0].ok  # type: ignore[attr-defined]


class _SlowStore:
    """A store whose dump arrives only when the test says so."""

    url = "slow://"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.release = threading.Event()
        self.reading = threading.Event()

    def list(self):  # type: ignore[no-untyped-def]
        return iter(())

    def head(self, key: str) -> None:
        return None

    def chunks(self, key: str):  # type: ignore[no-untyped-def]
        self.reading.set()
        self.release.wait(30)
        yield self.data
