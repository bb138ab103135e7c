"""Bounded decompression: what it costs on real-looking data, and what a bomb costs.

    .venv/bin/python bench/decompression.py

For each codec drwatch reads: the throughput of `inflated()` on 64 MiB of pg_dump-like text
(every call bounded to 4 MiB; zstd fed 128 bytes at a time, as it takes no output limit), beside
the codec's own one-shot decompression; then a 4 GiB bomb of zeros (a few hundred kB stored)
read through `inflated()` with the default 1 GiB cap, with the process's peak RSS.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.support.compression import CompressionError, inflated

CODECS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "gz": (lambda d: gzip.compress(d, 6), gzip.decompress),
    "zst": (zstandard.ZstdCompressor(level=3).compress, zstandard.ZstdDecompressor().decompress),
    "lz4": (lz4.frame.compress, lz4.frame.decompress),
    "xz": (lambda d: lzma.compress(d, preset=1), lzma.decompress),
    "bz2": (bz2.compress, bz2.decompress),
    "br": (lambda d: brotli.compress(d, quality=5), brotli.decompress),
}


def text(size: int) -> bytes:
    """COPY rows: ids, hex words, timestamps, as pg_dump writes them."""
    rng = random.Random(1)
    words = [f"{rng.getrandbits(40):x}" for _ in range(20000)]
    rows, total, n = [], 0, 0
    while total < size:
        row = f"{n}\t{rng.choice(words)} {rng.choice(words)}\t2026-12-0{n % 9 + 1} 10:00:00+00\n"
        rows.append(row)
        total += len(row)
        n += 1
    return "".join(rows).encode()[:size]


def blocks(data: bytes, size: int = 1 << 20) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def main() -> None:
    raw = text(64 << 20)
    print(f"{'codec':6} {'stored':>9} {'inflated() MB/s':>16} {'one-shot MB/s':>14}")
    for name, (pack, unpack) in CODECS.items():
        packed = pack(raw)
        started = time.perf_counter()
        total = sum(len(piece) for piece in inflated(f"x.{name}", blocks(packed)))
        ours = time.perf_counter() - started
        started = time.perf_counter()
        unpack(packed)
        theirs = time.perf_counter() - started
        assert total == len(raw)
        print(f"{name:6} {len(packed) >> 10:>7}kB {len(raw) / ours / 1e6:>16.0f} "
              f"{len(raw) / theirs / 1e6:>14.0f}")  # fmt: skip
    member = zstandard.ZstdCompressor(level=1).compress(bytes(64 << 20))
    bomb = member * 64  # 4 GiB of zeros
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        for _ in inflated("bomb.sql.zst", blocks(bomb), limit=1 << 30):
            pass
    except CompressionError as exc:
        why = str(exc)
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"bomb: {len(bomb) >> 10} kB stored for 4 GiB: {why!r} in {took:.2f} s; peak RSS "
          f"{peak >> 10} MiB (before it: {before >> 10} MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
