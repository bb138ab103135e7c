"""The clock that dates unarchived WAL, without a server."""

from __future__ import annotations

from checks.support.archiver import UnarchivedClock

SEG = 16 * 1024 * 1024


def test_clock_dates_exposure_from_the_first_unarchived_sample() -> None:
    clock = UnarchivedClock(tolerance_bytes=512)
    assert clock.observe(100.0, 10 * SEG + 100, 10 * SEG) is None  # within tolerance: idle
    assert clock.observe(110.0, 10 * SEG + 5000, 10 * SEG) == 110.0
    assert clock.observe(120.0, 10 * SEG + 9000, 10 * SEG) == 110.0  # still the oldest at risk
    # The segment holding the first write got archived; the second write is the oldest at risk.
    assert clock.observe(130.0, 11 * SEG + 100, 10 * SEG + 6000) == 120.0
    assert clock.observe(140.0, 11 * SEG + 100, 11 * SEG) is None


def test_clock_history_is_bounded_and_keeps_the_oldest_sample() -> None:
    clock = UnarchivedClock(tolerance_bytes=0)
    for i in range(20_000):
        clock.observe(float(i), SEG + i + 1, SEG)
    assert len(clock.samples) <= 10_000
    assert clock.samples[0] == (0.0, SEG + 1)
