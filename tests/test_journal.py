"""Append-only records in state_dir: bounded, read through a schema, a bad line lost alone."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from core.journal import Journal


class Entry(BaseModel):
    t: float
    n: int


def _journal(path: Path, keep: float = 86400.0, max_bytes: int = 1 << 20) -> Journal[Entry]:
    return Journal(path, TypeAdapter(Entry), lambda e: e.t, keep, max_bytes)


def test_a_torn_or_foreign_line_is_skipped_and_counted_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = _journal(path)
    now = time.time()
    journal.append([Entry(t=now, n=1)])
    with open(path, "a") as handle:
        handle.write('{"t": "yesterday", "n": 2}\n{"t": 1, "n"\n')  # a crash mid-write
    journal.append([Entry(t=now + 1, n=3)])
    assert [e.n for e in journal.read()] == [1, 3]
    assert journal.skipped == 2
    assert path.stat().st_mode & 0o777 == 0o600  # state_dir's records are drwatch's alone


def test_the_record_stays_within_its_size_keeping_the_newest(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.jsonl", max_bytes=4096)
    now = time.time()
    for n in range(500):
        journal.append([Entry(t=now + n, n=n)])
    assert (tmp_path / "j.jsonl").stat().st_size <= 4096
    kept = [e.n for e in journal.read()]
    assert kept[-1] == 499 and kept == list(range(kept[0], 500))


def test_entries_older_than_keep_are_dropped(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.jsonl", keep=3600.0)
    now = time.time()
    journal.append([Entry(t=now - 7200, n=1), Entry(t=now - 60, n=2)])  # first append prunes
    journal.append([Entry(t=now, n=3)])
    assert [e.n for e in journal.read()] == [2, 3]
    assert [e.n for e in journal.read(since=now - 30)] == [3]
