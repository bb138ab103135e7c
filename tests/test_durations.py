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


def test_ages_in_summaries_are_as_of_when_shown() -> None:
    """A summary written at a check's run and shown two minutes later says two minutes."""
    from checks.base import Status
    from core.durations import age_of, render_ages
    from exporter.runtime.results import CheckResult

    written = 1_000_000.0
    result = CheckResult("t", "backups", Status.OK, f"newest a.dump {age_of(written)} old", True,
                         0.1, written)  # fmt: skip
    assert render_ages(result.summary_text, now=written + 0.2) == "newest a.dump <1s old"
    assert render_ages(result.summary_text, now=written + 125) == "newest a.dump 2m5s old"
    assert "{age:" not in result.summary and result.summary.endswith(" old")
    assert render_ages("no ages here {agenda}") == "no ages here {agenda}"
