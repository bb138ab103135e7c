"""Every compression the backup tools write, read back from a real WAL segment: by suffix, and
by magic bytes under a plain name (barman's local archive); corrupt input is named."""

from __future__ import annotations

import tracemalloc
import zlib

import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard

from checks.support.compression import PIECE, CompressionError, codec_of, inflated, read_prefix
from checks.support.walnames import LONG_PAGE_HEADER_BYTES, segment_size_in_header
from sandbox.pgcluster import PgCluster, wait_until
from tests.wal_codecs import COMPRESS

SEG = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def segment() -> bytes:
    cluster = PgCluster().init().start()
    try:
        cluster.write_wal(1)
        wait_until(cluster.archive_caught_up, 30, what="archived")
        first = min(p for p in cluster.archive.iterdir() if len(p.name) == 24)
        return first.read_bytes()
    finally:
        cluster.destroy()


def _blocks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_real_segment_states_its_size_in_its_first_page(segment: bytes) -> None:
    assert len(segment) == SEG
    assert segment_size_in_header(segment[:LONG_PAGE_HEADER_BYTES]) == SEG
    assert segment_size_in_header(b"\x00" * LONG_PAGE_HEADER_BYTES) is None
    assert segment_size_in_header(segment[:20]) is None


@pytest.fixture(scope="module")
def sample(segment: bytes) -> bytes:
    """A segment's first megabyte (its header included): every codec compresses it quickly."""
    return segment[: 1 << 20]


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_every_codec_reads_back_by_suffix(sample: bytes, codec: str) -> None:
    packed = COMPRESS[codec](sample)
    name = f"wal_005/000000010000000000000001.{codec}"
    assert b"".join(inflated(name, _blocks(packed))) == sample
    head = read_prefix(name, _blocks(packed), LONG_PAGE_HEADER_BYTES)
    assert segment_size_in_header(head) == SEG


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst", "lz4", "snappy"])
def test_a_plain_name_is_told_by_its_first_bytes(sample: bytes, codec: str) -> None:
    """barman's local archive keeps PostgreSQL's names for compressed files: a segment must
    never be handed to recovery still compressed."""
    packed = COMPRESS[codec](sample)
    name = "wals/0000000100000000/000000010000000000000001"
    assert codec_of(name, packed[:16]) == codec
    assert b"".join(inflated(name, _blocks(packed))) == sample
    assert codec_of(name, sample[:16]) is None  # a raw segment stays raw
    assert b"".join(inflated(name, _blocks(sample))) == sample


@pytest.mark.parametrize("codec", ["gz", "zst", "lz4", "br", "xz"])
def test_a_truncated_file_is_named(sample: bytes, codec: str) -> None:
    packed = COMPRESS[codec](sample)
    name = f"000000010000000000000001.{codec}"
    with pytest.raises(CompressionError, match=rf"{name}: does not decompress .*truncated"):
        b"".join(inflated(name, [packed[: len(packed) // 2]]))


def test_output_is_bounded(sample: bytes) -> None:
    packed = COMPRESS["gz"](sample * 2)
    with pytest.raises(CompressionError, match="more than 1048576 bytes"):
        b"".join(inflated("x.gz", _blocks(packed), limit=1 << 20))


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst", "lz4"])
def test_concatenated_members_are_read_whole(sample: bytes, codec: str) -> None:
    """pg_basebackup's pg_wal.tar.gz is several gzip members; pigz, pbzip2 and zstd -T write
    several too: every member is read, not only the first."""
    half = len(sample) // 2
    packed = COMPRESS[codec](sample[:half]) + COMPRESS[codec](sample[half:])
    assert b"".join(inflated(f"x.{codec}", _blocks(packed, 1000))) == sample


BOMB = 128 << 20  # zeros: each codec packs them into a few kB to a few hundred kB


def _bomb(codec: str) -> bytes:
    """`BOMB` zeros, compressed (streamed into the compressor where it can be)."""
    zeros = bytes(1 << 20)
    if codec == "zst":
        return zstandard.ZstdCompressor().compress(bytes(BOMB))
    if codec == "gz":
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return b"".join(packer.compress(zeros) for _ in range(BOMB >> 20)) + packer.flush()
    if codec == "lz4":
        return lz4.frame.compress(bytes(BOMB))
    return COMPRESS[codec](bytes(BOMB))


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst", "lz4", "br", "snappy"])
def test_a_bomb_inflates_a_bounded_piece_at_a_time(codec: str) -> None:
    """A few kB that stand for 128 MiB: no decoder call makes more than a piece, whatever one
    block stands for; the cap stops it by name."""
    packed = _bomb(codec)
    assert len(packed) < BOMB // 20
    pieces = inflated(f"x.{codec}", [packed])  # the whole bomb in one block
    sizes = [len(piece) for piece in pieces]
    assert sum(sizes) == BOMB and max(sizes) <= PIECE
    tracemalloc.start()
    try:
        with pytest.raises(CompressionError, match=r"x\.\w+: decompresses to more than 33554432"):
            for _ in inflated(f"x.{codec}", [packed], limit=32 << 20):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The decoder's own state (xz's 8 MiB dictionary, bzip2's block) and a few pieces: never
    # what the bomb stands for.
    assert peak < 32 << 20, peak


def test_a_snappy_chunk_that_claims_more_than_its_format_allows_is_refused() -> None:
    chunk = bytearray(COMPRESS["snappy"](b"x" * 100))
    body = chunk[10:]  # after the stream identifier: a compressed chunk
    assert body[0] == 0x00
    varint_at = 8  # type (1), length (3), CRC (4), then the raw block's length
    forged = bytes(chunk[:10]) + bytes(body[:varint_at]) + b"\xff\xff\xff\x7f" + bytes(
        body[varint_at + 1 :]
    )  # fmt: skip
    forged = forged[:11] + (len(forged) - 14).to_bytes(3, "little") + forged[14:]
    with pytest.raises(CompressionError, match=r"claims .* bytes"):
        b"".join(inflated("x.snappy", [forged]))
