"""What a drill leaves when drwatch is killed, and proving it is drwatch's before touching it.

A directory in a shared place (/tmp) is anyone's: a local user can plant
`/tmp/drwatch-drill-<dead pid>-x/data/postmaster.pid` naming any process. So drwatch acts only on
what it can prove it made:

- every scratch directory holds a marker file drwatch wrote (owned by drwatch's user, mode 0600)
  with this installation's random id, kept in `state_dir` (mode 0600): another user can neither
  read nor forge it;
- the scratch base is created by drwatch and must not be writable by others;
- the scratch directory stays drwatch's (only `data` in it is the server's), so the server's user
  cannot swap `data` for a link to another cluster;
- a process is signalled only if its working directory is that leftover's own data directory, by
  device and inode, and it runs as that directory's owner (PostgreSQL and redis-server both work
  in theirs), never by a pid read from a file. A drill's processes in a bubblewrap sandbox die
  with drwatch; this is for the other isolation modes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("drwatch.drills")

MARKER = "drwatch-drill"  # in every scratch directory's name, so leftovers are found by it
OWNER_FILE = ".drwatch-owner"
ID_FILE = "drill-owner-id"
MAX_ID_BYTES = 128


class NotOurs(Exception):
    """A place drwatch cannot prove is its own: left alone."""


def instance_id(state_dir: str | Path) -> str:
    """This installation's random id (made once, kept private in state_dir). One that does not
    read as an id (left empty by a full disk) is made anew; OSError when state_dir cannot keep
    one."""
    path = Path(state_dir) / ID_FILE
    try:
        found = _read_private(path)
        if _ID.fullmatch(found):
            return found
    except NotOurs:
        if path.exists() or path.is_symlink():
            raise
    made = secrets.token_hex(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(made)
        os.replace(tmp, path)  # whole or not at all: never an empty id kept forever
    finally:
        tmp.unlink(missing_ok=True)
    return made


_ID = re.compile(r"[0-9a-f]{32}")


def _read_private(path: Path) -> str:
    """A file only drwatch's user could have written: owned by it, a regular file, mode 0600."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise NotOurs(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise NotOurs(f"{path}: not a private file of drwatch's user")
        return handle.read(MAX_ID_BYTES).decode("ascii", "replace").strip()


def safe_base(base: Path) -> Path:
    """The scratch base, made by drwatch (0711: the scratch user reaches its own directory in
    it, nobody lists it); an existing one must be drwatch's and not writable by others."""
    base.mkdir(mode=0o711, parents=True, exist_ok=True)
    st = base.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise NotOurs(
            f"{base} is not a directory of drwatch's user that only it can write: drills need a "
            "scratch.dir of their own"
        )
    return base


def mark(directory: Path, state_dir: str | Path) -> None:
    """Writes the owner marker into a scratch directory drwatch just made."""
    fd = os.open(
        directory / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
    )
    with os.fdopen(fd, "w") as out:
        out.write(instance_id(state_dir))


def _ours(directory: Path, state_dir: str | Path) -> bool:
    try:
        st = directory.lstat()
        if not stat.S_ISDIR(st.st_mode):
            return False
        return secrets.compare_digest(_read_private(directory / OWNER_FILE), instance_id(state_dir))
    except (NotOurs, OSError):
        return False


def _owner_alive(path: Path) -> bool:
    match = re.match(rf"{MARKER}-(\d+)-", path.name)
    if match is None:
        return False
    try:
        os.kill(int(match[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _working_in(directory: Path) -> list[int]:
    """The processes whose working directory is `directory` itself (by device and inode, not by
    path) and that run as the user who owns it: the servers of that scratch cluster (PostgreSQL
    and redis-server work in their data directory). No pid file is read: one is anyone's."""
    try:
        st = directory.lstat()
    except OSError:
        return []
    if not stat.S_ISDIR(st.st_mode):
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) <= 1 or int(entry.name) == os.getpid():
            continue
        try:
            owner = entry.stat().st_uid
            cwd = os.stat(entry / "cwd")
        except OSError:  # gone, or not ours to look at
            continue
        if (cwd.st_dev, cwd.st_ino) == (st.st_dev, st.st_ino) and owner == st.st_uid:
            found.append(int(entry.name))
    return found


def stop_servers(directory: Path) -> None:
    """Kills what still runs in a leftover's data directory (proven by _working_in)."""
    for pid in _working_in(directory):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_leftovers(base: Path, state_dir: str | Path) -> list[Path]:
    """Scratch directories a drwatch that is gone left in `base` and its socket directories in
    the system's temporary directory: stopped and removed, when drwatch can prove they are its
    own. Those of a drwatch still running are left alone, and so is anything it did not make."""
    candidates = sorted(base.glob(f"{MARKER}-*")) if base.is_dir() else []
    candidates += sorted(Path(tempfile.gettempdir()).glob(f"{MARKER}-*"))
    removed = []
    for path in candidates:
        if _owner_alive(path):
            continue
        if not _ours(path, state_dir):
            log.warning("left alone, not proven drwatch's own: %s", path)
            continue
        stop_servers(path / "data")
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
