"""The typed exception tree: callers catch what they mean."""

from __future__ import annotations


class DrwatchError(Exception):
    """Base of every error drwatch raises on purpose."""


class ConfigError(DrwatchError):
    """The configuration is invalid; `problems` lists each one with its YAML path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class CheckError(DrwatchError):
    """A check could not measure what it measures.

    `reason` is a short, bounded category used as the `reason` label of
    `drwatch_check_errors_total` (never free text); the message is for humans.
    """

    REASONS = frozenset({"connect", "query", "permission", "timeout", "config", "internal"})

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown check error reason {reason!r}")
        self.reason = reason
        super().__init__(message)


class CheckTimeout(CheckError):
    """The check did not finish within the deadline drwatch gives it."""

    def __init__(self, seconds: float, waiting_on: str | None = None) -> None:
        where = f" waiting on {waiting_on}" if waiting_on else ""
        super().__init__("timeout", f"timed out after {round(seconds, 1):g} s{where}")
