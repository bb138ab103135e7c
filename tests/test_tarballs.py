"""Unpacking tar files from a backup store, written as an attacker would write them: nothing
lands outside the directory, no device is made, no setuid bit survives. Runs under Debian 12's
Python 3.11.2 in CI too (its tarfile has no extraction filters)."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from checks.support.compression import CompressionError
from checks.support.tarballs import UnsafeMember, unpack
from tests.wal_codecs import COMPRESS


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644):  # type: ignore[no-untyped-def]
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


def _unpack(data: bytes, into: Path, name: str = "base.tar") -> None:
    into.mkdir(exist_ok=True)
    unpack(io.BytesIO(data), name, into)


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([(_member("/etc/cron.d/x"), b"x")], "an absolute path"),
        ([(_member("../escape"), b"x")], "outside the directory"),
        ([(_member("global/../../escape"), b"x")], "outside the directory"),
        ([(_member("etc", tarfile.SYMTYPE, "/etc"), None)], "a link to an absolute path"),
        ([(_member("up", tarfile.SYMTYPE, "../.."), None)], "a link leaving the directory"),
        ([(_member("h", tarfile.LNKTYPE, "../../etc/passwd"), None)], "a link leaving"),
        ([(_member("dev", tarfile.CHRTYPE), None)], "a device"),
        ([(_member("fifo", tarfile.FIFOTYPE), None)], "FIFO"),
    ],
)
def test_hostile_members_are_refused_before_anything_is_written(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], why: str
) -> None:
    into = tmp_path / "data"
    with pytest.raises(UnsafeMember, match=why):
        _unpack(_tar(*members), into)
    assert not (tmp_path / "escape").exists()
    assert list(into.iterdir()) == []


def test_a_file_written_through_an_inside_link_stays_inside(tmp_path: Path) -> None:
    """A link that is fine on its own, then a member through it that would leave."""
    data = _tar(
        (_member("sub", tarfile.DIRTYPE, mode=0o755), None),
        (_member("sub/here", tarfile.SYMTYPE, ".."), None),
        (_member("sub/here/../escape"), b"x"),
    )
    with pytest.raises(UnsafeMember, match="outside the directory"):
        _unpack(data, tmp_path / "data")
    assert not (tmp_path / "escape").exists()


def test_data_is_unpacked_with_safe_modes(tmp_path: Path) -> None:
    data = _tar(
        (_member("global", tarfile.DIRTYPE, mode=0o700), None),
        (_member("global/pg_control", mode=0o4777), b"control"),
        (_member("PG_VERSION", mode=0o400), b"15\n"),
        (_member("link", tarfile.SYMTYPE, "PG_VERSION"), None),
    )
    for codec in ("", ".gz", ".lz4", ".zst"):
        into = tmp_path / f"data{codec}"
        packed = COMPRESS[codec[1:]](data) if codec else data
        _unpack(packed, into, f"base.tar{codec}")
        control = into / "global" / "pg_control"
        assert control.read_bytes() == b"control"
        mode = stat.S_IMODE(control.stat().st_mode)
        assert mode == 0o755, oct(mode)  # setuid and group/other write gone
        assert stat.S_IMODE((into / "PG_VERSION").stat().st_mode) == 0o600  # the owner writes
        assert (into / "link").resolve() == (into / "PG_VERSION").resolve()


def test_a_truncated_compressed_tar_is_unreadable(tmp_path: Path) -> None:
    data = COMPRESS["lz4"](_tar((_member("PG_VERSION"), b"15\n" * 10000)))
    with pytest.raises(CompressionError, match="truncated"):
        _unpack(data[: len(data) // 2], tmp_path / "data", "base.tar.lz4")
