"""Unpacking a backup's tar files safely, compressed (`.tar.gz`, `.tar.lz4`, `.tar.zst`) or not.
The tar stream is read once, decompressed on the way (`checks.support.compression`).

What was written to a backup store is anyone's who can write there, so every member is checked
before anything is written, with the strength of Python's `data` extraction filter (3.11.4+),
implemented here because Debian 12's Python is 3.11.2: no absolute names, no `..` leaving the
directory, no link whose target is absolute or leaves it, no devices or FIFOs; modes lose setuid,
setgid, sticky and group/other write bits, owners are not taken from the archive.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from checks.support.compression import CompressionError, inflated

TAR_SUFFIXES = (".tar", ".tar.gz", ".tar.lz4", ".tar.zst")
CHUNK = 1 << 20


class UnsafeMember(Exception):
    """A tar member that would write outside the directory, or something other than data."""


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def checked(member: tarfile.TarInfo, into: Path) -> tarfile.TarInfo:
    """The member as it may be written under `into`, or UnsafeMember naming it."""
    name = member.name
    root = os.path.realpath(into)
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafeMember(f"{name}: an absolute path")
    target = os.path.realpath(os.path.join(root, name))
    if not _inside(root, target):
        raise UnsafeMember(f"{name}: outside the directory")
    if (
        member.ischr()
        or member.isblk()
        or member.isfifo()
        or not (member.isreg() or member.isdir() or member.issym() or member.islnk())
    ):
        raise UnsafeMember(f"{name}: a device, FIFO or other special file")
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith("/") or os.path.isabs(link):
            raise UnsafeMember(f"{name}: a link to an absolute path ({link})")
        base = os.path.dirname(target) if member.issym() else root
        if not _inside(root, os.path.realpath(os.path.join(base, link))):
            raise UnsafeMember(f"{name}: a link leaving the directory ({link})")
    safe = member.replace(deep=False) if hasattr(member, "replace") else _copy(member)
    mode = member.mode & 0o755  # no setuid, setgid, sticky, group/other write
    if member.isreg() or member.islnk():
        mode |= 0o600  # the owner reads and writes what it restores
    safe.mode = mode
    safe.uid, safe.gid, safe.uname, safe.gname = os.getuid(), os.getgid(), "", ""
    return safe


def _copy(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """TarInfo.replace() arrived with the filters (3.11.4): a shallow copy by hand before."""
    copy = tarfile.TarInfo(member.name)
    for attribute in ("size", "mtime", "type", "linkname", "offset", "offset_data", "sparse",
                      "pax_headers", "devmajor", "devminor"):  # fmt: skip
        setattr(copy, attribute, getattr(member, attribute))
    return copy


class _Stream(io.RawIOBase):
    """A readable file over decompressed blocks, for tarfile's stream mode."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._held = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._held:
            try:
                self._held = next(self._blocks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._held))
        buffer[:size] = self._held[:size]
        self._held = self._held[size:]
        return size


def _blocks(source: IO[bytes]) -> Iterator[bytes]:
    while block := source.read(CHUNK):
        yield block


def unpack(source: IO[bytes], name: str, into: Path, limit: int | None = None) -> None:
    """The tar file `name` (read from `source`, decompressed by its suffix or first bytes) into
    the directory `into`; UnsafeMember before writing a member that is not plain data;
    tarfile.TarError, CompressionError or EOFError for an unreadable archive (CompressionError
    too past `limit` decompressed bytes)."""
    stream = io.BufferedReader(_Stream(inflated(name, _blocks(source), limit)), CHUNK)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            # Checked above; where Python has filters, it is told so (else 3.12+ warns).
            tar.extract(checked(member, into), into, **_TRUSTED)  # type: ignore[arg-type]


def read_member(
    name: str, blocks: Iterable[bytes], member: str, max_members: int, limit: int = 1 << 16
) -> bytes | None:
    """The first `limit` bytes of one small member among the first `max_members` of tar file
    `name`, read no further; None if it is not there or the archive is unreadable."""
    stream = io.BufferedReader(_Stream(inflated(name, blocks)), CHUNK)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for number, info in enumerate(tar):
                if info.name.removeprefix("./") == member and info.isreg():
                    handle = tar.extractfile(info)
                    return handle.read(limit) if handle else None
                if number >= max_members:
                    return None
    except UNREADABLE:
        return None
    return None


UNREADABLE = (tarfile.TarError, CompressionError, EOFError)
_TRUSTED: dict[str, str] = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
