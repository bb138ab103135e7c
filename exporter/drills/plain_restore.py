"""Restoring a plain SQL dump with no client that interprets it.

psql reads a dump with its meta-commands live (`\\!`, `\\o |cmd`, `\\copy ... to program`, `\\i
file`, `\\c - superuser`): a hostile dump would run commands as drwatch's user. So drwatch never
gives a dump to psql. It reads the dump itself (sqlscan), sends its SQL to the server as text over
the protocol, in one transaction, stopping at the first error, as the drills' restoring role (no
superuser, no server programs or files), and streams COPY data through the COPY protocol. What
pg_dump itself writes besides SQL is understood (`\\connect` to the dump's own database,
`\\restrict` / `\\unrestrict`, CVE-2025-8714's guard); any other meta-command fails the drill
naming its line.

Left out, as pg_restore's `--no-owner --no-privileges` leave them out of a custom dump: owners
and grants (production's roles do not exist in a scratch database); and, because the scratch
superuser created them beforehand from the server's own files, the dump's `CREATE EXTENSION` and
`COMMENT ON EXTENSION` (an extension's comment belongs to its owner). pg_dump writes each of these
statements on one line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from checks.support.compression import CompressionError, inflated
from exporter.drills.result import Timer
from exporter.drills.scratch import DrillError
from exporter.drills.sqlscan import Line, Scanner, lines

CHUNK = 1 << 20
MAX_STATEMENT = 64 << 20  # SQL held at once (a line, a batch of statements); COPY data streams
_BATCH = 1 << 20  # statements sent together once this much is held

_LEFT_OUT = re.compile(
    rb"^(CREATE EXTENSION IF NOT EXISTS |COMMENT ON EXTENSION |GRANT |REVOKE |"
    rb"ALTER DEFAULT PRIVILEGES |ALTER [A-Z ]+ .* OWNER TO )"
)
_COPY_START = re.compile(rb"^COPY [^\n]* FROM stdin;\r?\n?$")
_COPY_END = (b"\\.\n", b"\\.\r\n")  # psql's own end of COPY data
_SKIPPED_META = re.compile(rb"^\\(restrict|unrestrict) [A-Za-z0-9]+\s*$")
_CONNECT = re.compile(rb"^\\(c|connect)\s+(.*?)\s*$")


def plain_lines(name: str, source: Path, cap: int | None) -> Iterator[Line]:
    """The decompressed lines of a plain dump, each bounded, the whole at most `cap` bytes."""
    with open(source, "rb") as handle:
        yield from lines(inflated(name, iter(lambda: handle.read(CHUNK), b""), cap), MAX_STATEMENT)


class PlainRestore:
    """One dump into one database: SQL in batches that end between statements, COPY data
    through the COPY protocol."""

    def __init__(
        self, conn: psycopg.Connection[Any], timer: Timer, database: str | None = None
    ) -> None:
        self.conn = conn
        self.timer = timer
        self.scanner = Scanner()
        self.batch = bytearray()
        self.database = database  # production's, which `\connect` may name (pg_dump -C)

    def restore(self, source: Iterator[Line]) -> None:
        for line in source:
            self.timer.remaining()  # raises past the deadline
            if not line.whole:
                raise DrillError(
                    f"line {line.number}: longer than {MAX_STATEMENT >> 20} MiB outside COPY data"
                )
            if self.scanner.at_boundary and _COPY_START.match(line.text):
                self._flush()
                self._copy(line, source)
                continue
            starts = self.scanner.at_boundary
            meta = self.scanner.scan(line.text)
            if meta is not None:
                self._meta(line, meta)
            elif starts and self.scanner.at_boundary and _LEFT_OUT.match(line.text):
                continue
            else:
                self.batch += line.text
            if self.scanner.at_boundary and len(self.batch) >= _BATCH:
                self._flush()
            elif len(self.batch) > MAX_STATEMENT:
                raise DrillError(
                    f"line {line.number}: a statement longer than {MAX_STATEMENT >> 20} MiB"
                )
        self._flush()

    def _flush(self) -> None:
        if self.batch.strip():
            self.conn.execute(bytes(self.batch))
        self.batch.clear()

    def _meta(self, line: Line, at: int) -> None:
        """pg_dump's own meta-commands, alone on their line, pass; nothing else does."""
        command = line.text[at:].rstrip(b"\r\n")
        if at == 0 and _SKIPPED_META.match(command):
            return
        connect = _CONNECT.match(command) if at == 0 else None
        if connect and self._same_database(connect[2].decode("utf-8", "replace")):
            return
        shown = command[:60].decode("utf-8", "replace")
        raise DrillError(
            f"line {line.number}: the dump holds the psql meta-command {shown!r}; a plain dump "
            "may hold only what pg_dump writes (\\connect to its own database, \\restrict)"
        )

    def _same_database(self, arguments: str) -> bool:
        try:
            words = shlex.split(arguments)
        except ValueError:
            return False
        if words[:1] == ["-reuse-previous=on"]:
            words = words[1:]
        if len(words) != 1 or words[0] == "-":
            return False
        name = words[0]
        if match := re.fullmatch(r"dbname='((?:[^'\\]|\\.)*)'", name):
            name = match[1]
        return name == self.database

    def _copy(self, start: Line, source: Iterator[Line]) -> None:
        statement = start.text.rstrip(b"\r\n")
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            at_line_start = True
            for line in source:
                if at_line_start and line.text in _COPY_END:
                    return
                copy.write(line.text)
                at_line_start = line.whole
                self.timer.remaining()
        raise DrillError(f"line {start.number}: COPY data without its end (\\.): cut short?")


def plain_restore(
    copy: str, dump: Path, timer: Timer, database: str | None, cap: int | None
) -> None:
    """The dump restored into the database `copy` names, in one transaction (`database`:
    production's, the one the dump may `\\connect` to)."""
    limit_ms = int(max(1.0, timer.remaining()) * 1000)
    try:
        with psycopg.connect(copy, options=f"-c statement_timeout={limit_ms}") as conn:
            PlainRestore(conn, timer, database).restore(plain_lines(dump.name, dump, cap))
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DrillError(f"the restore failed: {first}") from None
    except CompressionError as exc:
        raise DrillError(f"the dump does not read: {exc}") from None
