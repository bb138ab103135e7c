"""Durations as users write them (`90s`, `10m`, `7d`, `1h30m`), in seconds."""

from __future__ import annotations

import re
import time
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")


def parse_duration(value: object) -> float:
    """Seconds in `value`; raises ValueError with a message meant for the config error."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("expected a duration with a unit, like 90s, 10m, 7d")
    text = value.strip()
    if not _WHOLE.match(text):
        raise ValueError(f"{value!r} is not a duration; use a number and a unit: ms, s, m, h, d, w")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))


# A config field holding a duration written with its unit, in seconds once validated.
Duration = Annotated[float, BeforeValidator(parse_duration)]


def format_duration(seconds: float) -> str:
    """Short human form, for summaries: 0s, 45s, 12m, 3h5m, 2d4h."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if 0 < seconds < 1:
        return "<1s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    whole = int(seconds)
    for unit, size, sub, sub_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
        ("m", 60, "s", 1),
    ):
        if whole >= size:
            major, rest = divmod(whole, size)
            minor = rest // sub_size
            return f"{major}{unit}{minor}{sub}" if minor else f"{major}{unit}"
    return f"{whole}s"  # pragma: no cover - loop always returns for whole >= 60


# An age in a summary is rendered when the summary is shown, never when it was written: a
# result is shown for minutes ("newest ... <1s old" two minutes later was a lie).
_AGE_TOKEN = re.compile(r"\{age:(-?\d+(?:\.\d+)?)\}")


def age_of(timestamp: float) -> str:
    """A placeholder for the age of `timestamp`, rendered by render_ages when shown."""
    return f"{{age:{timestamp:.3f}}}"


def render_ages(text: str, now: float | None = None) -> str:
    """`text` with each age placeholder as the age it is now (`3m5s`)."""
    if "{age:" not in text:
        return text
    at = time.time() if now is None else now
    return _AGE_TOKEN.sub(lambda m: format_duration(max(0.0, at - float(m[1]))), text)
