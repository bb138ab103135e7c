"""Timeline histories: which archived files recovery follows (names only; the real promotions and
pgBackRest restores are in test_timelines_real.py)."""

from __future__ import annotations

import pytest

from checks.support.continuity import read_continuity, segment_name
from checks.support.stores import StoredObject
from checks.support.timelines import BadHistory, Switch, TimelinePath, parse_history

SEG = 16 * 1024 * 1024
# What PostgreSQL writes when a PITR (or a failover) ends timeline 1 at 0/7000100.
HISTORY_2 = "1\t0/7000100\tbefore 2026-12-01 10:30:00+00\n"


def _objects(names: list[str]) -> list[StoredObject]:
    return [StoredObject(n, SEG, float(i)) for i, n in enumerate(names)]


def _tl(timeline: int, segnos: range | list[int]) -> list[str]:
    return [segment_name(timeline, n, SEG) for n in segnos]


def _read(histories: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda key: histories[key]


def test_history_files_are_parsed_as_postgresql_writes_them() -> None:
    text = "# a comment\n1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore x\n"
    assert parse_history(text) == (Switch(1, 0x3000158), Switch(2, 0x5000000))
    with pytest.raises(BadHistory, match="line 1"):
        parse_history("one\t0/1\n")
    with pytest.raises(BadHistory, match="must increase"):
        parse_history("2\t0/5000000\tx\n1\t0/3000000\tx\n")


def test_the_path_reads_each_segment_from_the_newest_timeline_begun_by_then() -> None:
    path = TimelinePath(3, (Switch(1, 0x3000158), Switch(2, 0x5000000)), SEG)
    assert [path.timeline_of(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 1, 2, 2, 3, 3]
    assert path.begins() == [(1, 0), (2, 0x3000158), (3, 0x5000000)]
    # A backup on timeline 1 before its switch leads here; one after it (the old primary's
    # abandoned branch) does not, nor one on a timeline outside the history.
    assert path.recovers_from(1, 2) and path.recovers_from(1, 3)
    assert not path.recovers_from(1, 4)
    assert not path.recovers_from(4, 9)


def test_after_a_pitr_the_abandoned_timeline_is_neither_newest_nor_continuity() -> None:
    """Timeline 1 went on to 0B; the PITR's timeline 2 branched at 0/7000100 and lost its 09:
    timeline 1's own 09 must not hide the gap, and its 0B is not the newest segment."""
    names = [
        *_tl(1, range(1, 12)),
        segment_name(1, 7, SEG) + ".partial",
        "00000002.history",
        *_tl(2, [7, 8, 10]),
    ]
    result = read_continuity(_objects(names), SEG, _read({"00000002.history": HISTORY_2}))
    assert result.path.current == 2
    assert result.newest is not None and result.newest.name == "00000002000000000000000A"
    assert result.missing == 1 and result.name(result.gaps[0][0]) == "000000020000000000000009"
    assert result.before_first_gap is not None
    assert result.before_first_gap.name == "000000020000000000000008"
    assert result.continuous_from == 10
    # Timeline 1's 07..0B and its .partial are not read by a recovery to timeline 2.
    assert result.abandoned == 6
    # Without the gap, a backup on timeline 1 before the switch still recovers to the newest.
    whole = read_continuity(
        _objects([*names, segment_name(2, 9, SEG)]), SEG, _read({"00000002.history": HISTORY_2})
    )
    assert whole.missing == 0 and whole.continuous_from == 1
    assert whole.recovers(segment_name(1, 3, SEG))
    assert not whole.recovers(segment_name(1, 9, SEG))  # taken on the abandoned branch


def test_the_primary_names_the_current_timeline() -> None:
    """A history file archived by a drill that then went away does not make its timeline the
    current one when the primary says it writes timeline 1."""
    names = [*_tl(1, range(1, 12)), "00000002.history", *_tl(2, [7])]
    writing = segment_name(1, 12, SEG)
    result = read_continuity(
        _objects(names), SEG, _read({"00000002.history": HISTORY_2}), writing=writing
    )
    assert result.path.current == 1 and result.missing == 0
    assert result.newest is not None and result.newest.name == segment_name(1, 11, SEG)
    assert result.abandoned == 1  # timeline 2's 07
    # Without a primary to ask, the highest timeline with a history file is the current one.
    alone = read_continuity(_objects(names), SEG, _read({"00000002.history": HISTORY_2}))
    assert alone.path.current == 2


def test_wal_on_a_timeline_without_its_history_file_is_named() -> None:
    names = [*_tl(1, range(1, 8)), *_tl(2, range(7, 10))]
    result = read_continuity(_objects(names), SEG, _read({}))
    assert result.without_history == [2]
    assert result.path.current == 2 and result.path.switches == ()
    # Recovery cannot follow the switch: a backup on timeline 1 is no recovery point.
    assert not result.recovers(segment_name(1, 2, SEG))


def test_a_history_file_that_is_not_one_is_named() -> None:
    from core.errors import CheckError

    names = [*_tl(1, range(1, 4)), "00000002.history"]
    with pytest.raises(CheckError, match=r"00000002\.history: not a timeline history file"):
        read_continuity(_objects(names), SEG, _read({"00000002.history": "garbage\n"}))
