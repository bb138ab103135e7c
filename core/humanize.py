"""Numbers as people read them, one format everywhere: 512 B, 97.5 kB; 1 backup, 2 backups."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable: TB ends the loop")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 backup`, `2 backups`; `plural` for nouns that do not take an s."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
