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

# A block in, what it inflates to out, in pieces of at most PIECE bytes (b"" flushes at the
# end): a few bytes of a bomb may stand for gigabytes, so no decoder call may make more.
Inflate = Callable[[bytes], Iterator[bytes]]
PIECE = 4 << 20
# zstandard's streaming decoder takes no output limit: fed this much at a time, one call makes at
# most 32 blocks of 128 KiB, a PIECE (a block's header and one byte are the least a block takes).
_ZSTD_FEED = 128
_BROTLI_LIMIT = PIECE // 2  # brotli's buffer may grow to twice its limit before it stops

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


class _Limited(Protocol):
    """A decoder whose calls take an output limit (bz2, lzma, lz4)."""

    eof: bool
    needs_input: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _limited(decoder: _Limited, block: bytes) -> Iterator[bytes]:
    """`block` through a decoder that takes an output limit, PIECE at a time."""
    out = decoder.decompress(block, PIECE)
    yield out
    while not decoder.eof and not decoder.needs_input:
        yield decoder.decompress(b"", PIECE)


def _zlib(decoder: Any, block: bytes) -> Iterator[bytes]:
    """gzip: zlib takes an output limit and keeps the input it did not reach."""
    while True:
        out = decoder.decompress(block, PIECE)
        yield out
        block = decoder.unconsumed_tail
        if decoder.eof or (not block and len(out) < PIECE):
            return


def _zstd(decoder: Any, block: bytes) -> Iterator[bytes]:
    view = memoryview(block)
    for at in range(0, len(view), _ZSTD_FEED):
        yield decoder.decompress(view[at : at + _ZSTD_FEED])
        if decoder.eof:
            decoder.unused_data_from = at + _ZSTD_FEED  # what follows the frame in this block
            return


class _Members:
    """A streaming decoder of concatenated members (gzip members, bzip2 and xz streams, zstd
    and lz4 frames: pg_basebackup and parallel compressors write several), each to its end
    marker, in bounded pieces; a file that stops before one is truncated (the decoders
    themselves just stop giving output)."""

    def __init__(self, make: Callable[[], Any], feed: Callable[[Any, bytes], Iterator[bytes]]):
        self._make = make
        self._feed = feed
        self._decoder: Any = make()

    def __call__(self, block: bytes) -> Iterator[bytes]:
        if not block:
            if not self._decoder.eof:
                raise EOFError("the compressed stream ends early (truncated)")
            return
        while block:
            if self._decoder.eof:
                self._decoder = self._make()
            for piece in self._feed(self._decoder, block):
                if piece:
                    yield piece
            block = self._rest(block) if self._decoder.eof else b""

    def _rest(self, block: bytes) -> bytes:
        """What follows the member that just ended, in `block`."""
        consumed = getattr(self._decoder, "unused_data_from", None)
        if consumed is not None:  # zstd, fed in slices: the slice's rest, then the block's
            slice_rest = bytes(self._decoder.unused_data or b"")
            return slice_rest + block[consumed:]
        return bytes(self._decoder.unused_data or b"")


class _Brotli:
    def __init__(self) -> None:
        self._decoder = brotli.Decompressor()

    def __call__(self, block: bytes) -> Iterator[bytes]:
        if not block:
            while not self._decoder.is_finished():  # what the last call held back
                tail = bytes(self._decoder.process(b"", output_buffer_limit=_BROTLI_LIMIT))
                if not tail:
                    raise EOFError("the compressed stream ends early (truncated)")
                yield tail
            return
        yield bytes(self._decoder.process(block, output_buffer_limit=_BROTLI_LIMIT))
        while not self._decoder.can_accept_more_data():
            yield bytes(self._decoder.process(b"", output_buffer_limit=_BROTLI_LIMIT))


class _Snappy:
    """Snappy's framing format (barman-cloud's WAL), chunk by chunk: each compressed chunk holds
    at most 64 KiB once inflated, checked before it is; cramjam checks its CRC."""

    _STREAM = b"\xff\x06\x00\x00sNaPpY"
    _MAX = 65536

    def __init__(self) -> None:
        self._held = bytearray()

    def __call__(self, block: bytes) -> Iterator[bytes]:
        if not block:
            if self._held:
                raise EOFError("the compressed stream ends early (truncated)")
            return
        self._held += block
        while len(self._held) >= 4:
            kind = self._held[0]
            length = int.from_bytes(self._held[1:4], "little")
            if len(self._held) < 4 + length:
                return
            chunk = bytes(self._held[: 4 + length])
            del self._held[: 4 + length]
            if kind in (0x00, 0x01):
                yield self._chunk(kind, chunk)
            elif kind < 0x80 and kind != 0xFF:
                raise ValueError(f"snappy: unknown chunk type {kind:#x}")

    def _chunk(self, kind: int, chunk: bytes) -> bytes:
        if kind == 0x00:  # compressed: the raw block's length is its first varint
            claimed, shift = 0, 0
            for byte in chunk[8:13]:
                claimed |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if claimed > self._MAX:
                raise ValueError(f"snappy: a chunk claims {claimed} bytes (at most 65536)")
        elif len(chunk) - 8 > self._MAX:
            raise ValueError("snappy: an uncompressed chunk over 65536 bytes")
        return bytes(cramjam.snappy.decompress(self._STREAM + chunk))


def inflater(codec: str | None) -> Inflate:
    if codec == "gz":
        return _Members(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), _zlib)
    makers: dict[str, Callable[[], Any]] = {
        "bz2": bz2.BZ2Decompressor,
        "xz": lzma.LZMADecompressor,
        "lz4": lz4.frame.LZ4FrameDecompressor,
    }
    if codec in makers:
        return _Members(makers[codec], _limited)
    if codec == "zst":
        return _Members(lambda: _ZstdFrame(), _zstd)
    if codec == "br":
        return _Brotli()
    if codec == "snappy":
        return _Snappy()
    return _raw


def _raw(block: bytes) -> Iterator[bytes]:
    for at in range(0, len(block), PIECE):
        yield block[at : at + PIECE]


class _ZstdFrame:
    """One zstd frame's decoder, and where in the block being fed it ended."""

    def __init__(self) -> None:
        self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self.unused_data_from: int | None = None

    @property
    def eof(self) -> bool:
        return bool(self._decoder.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._decoder.unused_data)

    def decompress(self, data: memoryview) -> bytes:
        return bytes(self._decoder.decompress(data))


def inflated(key: str, chunks: Iterable[bytes], limit: int | None = None) -> Iterator[bytes]:
    """The decompressed content of `key`, from its stored blocks, in pieces of at most PIECE
    bytes; CompressionError if it does not decompress or would pass `limit` bytes."""
    inflate: Inflate | None = None
    produced = 0
    try:
        for block in chunks:
            if not block:
                continue
            if inflate is None:
                inflate = inflater(codec_of(key, block[:16]))
            for out in inflate(block):
                produced += len(out)
                if limit is not None and produced > limit:
                    raise CompressionError(f"{key}: decompresses to more than {limit} bytes")
                yield out
        if inflate is not None:
            for tail in inflate(b""):
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
