"""Aligned text tables for the command line."""

from __future__ import annotations


def columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as aligned text columns; the last column (free text) is left unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]
        ).rstrip()
        for row in rows
    ]
