"""Restoring a plain SQL dump: psql, one transaction, stopping at the first error, as the
drills' restoring role (exporter.drills.scratch: no superuser, no server programs or files).

The SQL is decompressed on the way into psql's standard input. Left out, as pg_restore's
`--no-owner --no-privileges` leave them out of a custom dump: owners and grants (production's
roles do not exist in a scratch database); and, because the scratch superuser created them
beforehand from the server's own files, the dump's `CREATE EXTENSION` and `COMMENT ON
EXTENSION` (an extension's comment belongs to its owner). pg_dump writes each of these
statements on one line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from checks.support.compression import inflated
from core.programs import child_env
from exporter.drills.result import Timer
from exporter.drills.scratch import DrillError

_LEFT_OUT = re.compile(
    rb"^(CREATE EXTENSION IF NOT EXISTS |COMMENT ON EXTENSION |GRANT |REVOKE |"
    rb"ALTER DEFAULT PRIVILEGES |ALTER [A-Z ]+ .* OWNER TO )"
)
_COPY_START = re.compile(rb"^COPY .* FROM stdin;$")
_COPY_END = b"\\.\n"


def statements_kept(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The lines psql gets: the left-out statements dropped, COPY data passed as it is (a row
    may start with any word)."""
    in_copy = False
    for line in lines:
        if in_copy:
            in_copy = line != _COPY_END
            yield line
        elif _COPY_START.match(line.rstrip(b"\n")):
            in_copy = True
            yield line
        elif not _LEFT_OUT.match(line):
            yield line


CHUNK = 1 << 20


class Scratch(Protocol):
    def psql(self) -> str: ...


def plain_lines(name: str, source: IO[bytes]) -> Iterator[bytes]:
    """The decompressed lines of a plain dump, newline kept."""
    held = b""
    for block in inflated(name, iter(lambda: source.read(CHUNK), b"")):
        held += block
        *lines, held = held.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if held:
        yield held


def psql_restore(scratch: Scratch, copy: str, dump: Path, timer: Timer) -> None:
    params = conninfo_to_dict(copy)
    password = str(params.pop("password", "") or "")
    args = [scratch.psql(), "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1",
            "-d", make_conninfo("", **params)]  # fmt: skip
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True, env=child_env(**({"PGPASSWORD": password} if password else {})),
    )  # fmt: skip
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        with open(dump, "rb") as source:
            for line in statements_kept(plain_lines(dump.name, source)):
                proc.stdin.write(line)  # type: ignore[union-attr]
                timer.remaining()
        proc.stdin.close()  # type: ignore[union-attr]
        code = proc.wait(max(1.0, timer.remaining()))
    except BrokenPipeError:  # psql stopped at an error: its message says which
        code = proc.wait(max(1.0, timer.remaining()))
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    reader.join(5)
    if code != 0:
        text = b"".join(errors).decode("utf-8", "replace")
        first = [line for line in text.splitlines() if "ERROR" in line or "error" in line][:2]
        raise DrillError(f"psql failed: {' | '.join(first) or text.strip()[:300]}")
