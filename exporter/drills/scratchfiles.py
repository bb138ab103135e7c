"""Files drwatch writes and reads in a scratch tree that a restore's own user can change.

A restore (pgBackRest's, a base backup's files, the copy's own code) runs as the scratch user,
which owns the data directory: it may leave a symbolic link where drwatch is about to write
`pg_hba.conf`, pointing anywhere a root drwatch can write. So every path is opened from a
directory descriptor without following links, an existing name is replaced rather than written
through, and what is read is bounded.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

TAIL_BYTES = 64 * 1024  # of a server's log: its last errors say why it stopped


@contextlib.contextmanager
def directory(path: Path) -> Iterator[int]:
    """A descriptor of `path`, which must be a real directory (not a link to one)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


def write_file(
    into: Path, name: str, data: str, owner: pwd.struct_passwd | None = None, append: bool = False
) -> None:
    """`data` written to `into/name` (appended to what is there with `append`), never through a
    link; given to `owner` when drwatch writes it for the scratch user."""
    with directory(into) as dir_fd:
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CREAT
        if append:
            _refuse_special(dir_fd, name)
            flags |= os.O_APPEND
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
            flags |= os.O_EXCL
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
        with os.fdopen(fd, "w") as out:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{into / name} is not a regular file")
            if owner is not None:
                os.fchown(fd, owner.pw_uid, owner.pw_gid)
            out.write(data)


def _refuse_special(dir_fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            os.unlink(name, dir_fd=dir_fd)  # a link or a fifo where a file belongs: replaced


def create_file(into: Path, name: str) -> int:
    """A new file of drwatch's in `into` (a log a server writes through its descriptor)."""
    with directory(into) as dir_fd:
        return os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd
        )


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a regular file, never through a link; "" when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as source:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ""
        source.seek(max(0, st.st_size - limit))
        return source.read(limit).decode("utf-8", "replace")


def give(owner: pwd.struct_passwd | None, *paths: Path) -> None:
    """Every file and directory under `paths` given to `owner` (links themselves, never what
    they point to)."""
    if owner is None:
        return
    for top in paths:
        os.chown(top, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        for root, dirs, files in os.walk(top, followlinks=False):
            for name in (*dirs, *files):
                os.chown(Path(root, name), owner.pw_uid, owner.pw_gid, follow_symlinks=False)
