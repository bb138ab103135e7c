"""Durations as users write them, and as summaries show them."""

from __future__ import annotations

import pytest

from core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("7d", 604800),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("0s", 0),
        ("2w", 1209600),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["15", "10 minutes", "m", "-5s", "", 15, True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 0.3, 45, 720, 11100, 187200)] == [
        "0s",
        "<1s",
        "45s",
        "12m",
        "3h5m",
        "2d4h",
    ]
