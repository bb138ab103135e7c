"""Decompression of what backup tools write, streamed: by the name's suffix, else by magic bytes.

What each tool compresses with (`docs/what-drwatch-reads.md`): pgBackRest gz, lz4, zst, bz2;
WAL-G lz4 (its default), lzma, zstd, brotli; barman-cloud gzip, bzip2, xz, snappy, zstd, lz4;
barman (local) gzip, bzip2, xz and others *without a suffix*, under PostgreSQL's plain file names,
so a name without a suffix is told apart by its first bytes. A WAL segment starts with its page
header's magic (`0xD1xx`), which no compression format starts with: a file is never replayed raw
because its name looked plain.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import brotli  # type: ignore[import-untyped]
import cramjam
import lz4.frame  # type: ignore[import-untyped]
import zstandard

Inflate = Callable[[bytes], bytes]  # a block in, what it inflates to out; b"" flushes at the end

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\xff\x06\x00\x00sNaPpY", "snappy"),
)
_SUFFIXES = {
    "gz": "gz",
    "bz2": "bz2",
    "xz": "xz",
    "lzma": "xz",
    "zst": "zst",
    "lz4": "lz4",
    "br": "br",
    "snappy": "snappy",
}


# What the decoders raise on truncated or corrupt input.
_CORRUPT = (OSError, EOFError, ValueError, RuntimeError, lzma.LZMAError, zlib.error,
            zstandard.ZstdError, brotli.error, cramjam.DecompressionError)  # fmt: skip


COMPRESSED_SUFFIXES = tuple(f".{extension}" for extension in _SUFFIXES)


class CompressionError(Exception):
    """A file that does not decompress (truncated, corrupt, or more than it may hold)."""


def codec_of(key: str, head: bytes = b"") -> str | None:
    """The compression `key` holds: its suffix says, else its first bytes; None for raw data."""
    extension = key.rpartition("/")[2].rpartition(".")[2]
    if extension in _SUFFIXES:
        return _SUFFIXES[extension]
    for magic, codec in _MAGIC:
        if head.startswith(magic):
            return codec
    return None


class _Decoder(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


class _Members:
    """A streaming decoder of concatenated members (gzip members, bzip2 and xz streams, zstd
    and lz4 frames: pg_basebackup and parallel compressors write several), each to its end
    marker; a file that stops before one is truncated (the decoders themselves just stop
    giving output)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._decoder: _Decoder = make()

    def __call__(self, block: bytes) -> bytes:
        if not block:
            tail = bytes(getattr(self._decoder, "flush", bytes)())
            if not self._decoder.eof:
                raise EOFError("the compressed stream ends early (truncated)")
            return tail
        out = bytearray()
        while block:
            if self._decoder.eof:
                self._decoder = self._make()
            out += self._decoder.decompress(block)
            block = bytes(self._decoder.unused_data or b"") if self._decoder.eof else b""
        return bytes(out)


class _Brotli:
    def __init__(self) -> None:
        self._decoder = brotli.Decompressor()

    def __call__(self, block: bytes) -> bytes:
        if block:
            return bytes(self._decoder.process(block))
        if not self._decoder.is_finished():
            raise EOFError("the compressed stream ends early (truncated)")
        return b""


def _whole(decompress: Callable[[Any], Any]) -> Inflate:
    """Formats without a streaming decoder here (snappy's framing): held until the end, which a
    caller bounds (a WAL segment, a history file)."""
    held = bytearray()

    def inflate(block: bytes) -> bytes:
        if block:
            held.extend(block)
            return b""
        return bytes(decompress(bytes(held)))

    return inflate


def inflater(codec: str | None) -> Inflate:
    makers: dict[str, Callable[[], Any]] = {
        "gz": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
        "bz2": bz2.BZ2Decompressor,
        "xz": lzma.LZMADecompressor,
        "zst": lambda: zstandard.ZstdDecompressor().decompressobj(),
        "lz4": lz4.frame.LZ4FrameDecompressor,
    }
    if codec in makers:
        return _Members(makers[codec])
    if codec == "br":
        return _Brotli()
    if codec == "snappy":
        return _whole(cramjam.snappy.decompress)
    return lambda block: block


def inflated(key: str, chunks: Iterable[bytes], limit: int | None = None) -> Iterator[bytes]:
    """The decompressed content of `key`, from its stored blocks, in blocks; CompressionError if
    it does not decompress or would pass `limit` bytes."""
    inflate: Inflate | None = None
    produced = 0
    try:
        for block in chunks:
            if not block:
                continue
            if inflate is None:
                inflate = inflater(codec_of(key, block[:16]))
            out = inflate(block)
            produced += len(out)
            if limit is not None and produced > limit:
                raise CompressionError(f"{key}: decompresses to more than {limit} bytes")
            if out:
                yield out
        if inflate is not None and (tail := inflate(b"")):
            produced += len(tail)
            if limit is not None and produced > limit:
                raise CompressionError(f"{key}: decompresses to more than {limit} bytes")
            yield tail
    except _CORRUPT as exc:
        why = f"{type(exc).__name__}: {exc}"
        raise CompressionError(f"{key}: does not decompress ({why})") from None


def read_prefix(key: str, chunks: Iterable[bytes], size: int) -> bytes:
    """The first `size` decompressed bytes (fewer if the file is shorter), reading no further."""
    out = bytearray()
    for block in inflated(key, chunks):
        out += block
        if len(out) >= size:
            break
    return bytes(out[:size])
