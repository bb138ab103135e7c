"""Continuity analysis of 100,000 WAL names in each layout, and a pgBackRest catalogue of 1,000
backup sets.

    .venv/bin/python bench/backup_layouts.py [--names 100000] [--sets 1000]

For each layout the names are the tool's own (pgBackRest's `<segment>-<sha1>.gz` under
`archive/<stanza>/<id>/<timeline+log>/`, WAL-G's `wal_005/<segment>.lz4`, barman's
`wals/<timeline+log>/<segment>.gz`, plain `<segment>.gz`), on two timelines: timeline 1 up to
the middle and 1,000 abandoned segments past its switch point, timeline 2 (with its history file)
from there, one of its segments missing; timed is what the wal_archive check does with a listing:
detect the layout, keep the archive's files, parse every name, follow the history, find the gap
(CPU seconds, best of 3). The catalogue is a backup.info in
pgBackRest's format (one full set, then diff and incr sets referring to it), parsed by the
base_backups check's reader.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.backup_tools.pgbackrest import backups as pgbackrest_backups
from checks.backup_tools.registry import archive_files
from checks.backup_tools.registry import detect_wal_layout as detect
from checks.support.continuity import Continuity, read_continuity, segment_name
from checks.support.stores import StoredObject

SEG = 16 * 1024 * 1024


ABANDONED = 1000


def history(n: int) -> str:
    """Timeline 1 ended at the start of segment n // 4."""
    return f"1\t{(n // 4) * SEG >> 32:X}/{(n // 4) * SEG & 0xFFFFFFFF:X}\tno recovery target\n"


def keys(layout: str, n: int) -> list[str]:
    out = []
    switch = n // 4
    names = [
        *(segment_name(1, segno, SEG) for segno in range(1, switch + ABANDONED)),
        *(segment_name(2, segno, SEG) for segno in range(switch, n + 1) if segno != n // 2),
        "00000002.history",
    ]
    for name in names:
        if layout == "pgbackrest":
            sha1 = hashlib.sha1(name.encode()).hexdigest()
            out.append(f"archive/main/15-1/{name[:16]}/{name}-{sha1}.gz")
        elif layout == "walg":
            out.append(f"wal_005/{name}.lz4")
        elif layout == "barman":
            out.append(f"pg/wals/{name[:16]}/{name}.gz" if len(name) == 24 else f"pg/wals/{name}")
        else:
            out.append(f"{name}.gz")
    return out


def best_cpu(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def continuity(objects: list[StoredObject], n: int) -> Continuity:
    """What the wal_archive and base_backups checks do with a listing."""
    result = read_continuity(archive_files(objects, detect(objects)), SEG, lambda _: history(n))
    assert result.path.current == 2 and result.missing == 1, (result.path, result.missing)
    assert result.abandoned == ABANDONED and result.continuous_from == n // 2 + 1
    return result


def backup_info(sets: int) -> str:
    lines = ["[backrest]", "backrest-format=5", 'backrest-version="2.45"', "", "[backup:current]"]
    full = "20260101-000000F"
    for i in range(sets):
        when = datetime.fromtimestamp(1767225600 + 3600 * i, UTC).strftime("%Y%m%d-%H%M%S")
        label = full if i == 0 else f"{full}_{when}{'D' if i % 7 == 0 else 'I'}"
        fields = {
            "backrest-format": 5,
            "backrest-version": "2.45",
            "backup-archive-start": segment_name(1, 2 * i + 2, SEG),
            "backup-archive-stop": segment_name(1, 2 * i + 2, SEG),
            "backup-error": False,
            "backup-info-repo-size": 3062587,
            "backup-info-size": 23213967,
            "backup-timestamp-start": 1767225600 + 3600 * i,
            "backup-timestamp-stop": 1767225600 + 3600 * i + 60,
            "backup-type": "full" if i == 0 else ("diff" if i % 7 == 0 else "incr"),
            "db-id": 1,
        }
        lines.append(f"{label}={json.dumps(fields, separators=(',', ':'))}")
    lines += ["", "[db]", "db-id=1", 'db-version="15"', ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=1000)
    args = parser.parse_args()
    for layout in ("plain", "pgbackrest", "walg", "barman"):
        objects = [StoredObject(k, 1000, 1.7e9 + i) for i, k in enumerate(keys(layout, args.names))]
        cpu = best_cpu(lambda objects=objects: continuity(objects, args.names))  # type: ignore[misc]
        print(
            f"{layout:10} {len(objects):,} names on 2 timelines: continuity and the recovery "
            f"window's tail {cpu:.3f} s CPU",
            flush=True,
        )
    text = backup_info(args.sets)
    sets = pgbackrest_backups(text, "backup.info")
    assert len(sets) == args.sets
    cpu = best_cpu(lambda: pgbackrest_backups(text, "backup.info"))
    print(
        f"pgBackRest backup.info, {args.sets:,} sets ({len(text) / 1e6:.1f} MB): {cpu * 1000:.1f} ms CPU"
    )


if __name__ == "__main__":
    main()
