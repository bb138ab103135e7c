"""WAL files compressed as the backup tools write them, for tests: the codec, the suffix each
tool appends (none for barman's local archive, which compresses under PostgreSQL's own names)."""

from __future__ import annotations

import bz2
import gzip
import lzma

import brotli  # type: ignore[import-untyped]
import cramjam
import lz4.frame  # type: ignore[import-untyped]
import zstandard

COMPRESS = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": zstandard.ZstdCompressor().compress,
    "lz4": lz4.frame.compress,
    "br": brotli.compress,
    # barman-cloud's snappy is python-snappy's stream (framing) format
    "snappy": lambda data: bytes(cramjam.snappy.compress(data)),
}
