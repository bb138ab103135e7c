"""Append-only records in state_dir: bounded, read through a schema, a bad line lost alone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
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


def test_a_clock_step_does_not_wipe_the_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a year of drills, then the wall clock set 400 days ahead for a while (one entry
    appended then): ages are judged by drwatch's steady clock, nothing is dropped for the step,
    and the log says so once; back to the right time, old entries age out as before."""
    journal = _journal(tmp_path / "j.jsonl", keep=366 * 86400.0)
    now = time.time()
    journal.append([Entry(t=now - (200 - day) * 86400, n=day) for day in range(0, 200, 7)])
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 400 * 86400)
    with caplog.at_level("WARNING"):
        journal.append([Entry(t=time.time(), n=999)])
        journal._pruned_at = 0  # the hourly prune is due again
        journal.append([Entry(t=time.time(), n=1000)])
    assert len(journal.read()) == len(range(0, 200, 7)) + 2
    assert caplog.text.count("the clock stepped +34560") == 1
    monkeypatch.setattr(time, "time", real)
    journal._pruned_at = 0
    journal.append([Entry(t=now - 400 * 86400, n=-1), Entry(t=now, n=1001)])  # a late old one
    assert [e.n for e in journal.read()][-2:] == [-1, 1001]  # in order: older lines go first
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_a_failed_prune_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A state_dir that is full or read-only: the append or the prune fails, said in the log,
    and nothing half-written is left behind."""
    import subprocess

    store = tmp_path / "full"
    store.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(store)]).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        journal = _journal(store / "j.jsonl", keep=3600.0, max_bytes=48 << 10)
        now = time.time()
        for n in range(2000):  # more than the disk holds: appends fail, prunes try to rewrite
            journal.append([Entry(t=now - 7200 + n, n=n)])
        assert [p.name for p in store.iterdir()] == ["j.jsonl"]
    finally:
        subprocess.run(["umount", "--lazy", str(store)], check=False)
