"""Backup-store analysis and dump verification costs.

    .venv/bin/python bench/backup_analysis.py [--names 100000] [--dumps 1000] [--dump-mb 1024]

1. CPU time of WAL continuity analysis over 25k/50k/100k segment names and of the backup
   inventory over 1,000 dumps (an in-memory listing, so only drwatch's own work is timed):
   it must grow linearly with the names.
2. Wall time of one full-integrity verification of a ~1 GB custom-format dump (pg_dump -Fc -Z0)
   from a file:// store and from moto's S3 server, against a plain read of the same bytes.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.backups import BackupsCheck
from checks.support.continuity import read_continuity, segment_name
from checks.support.stores import FileStore, StoredObject, open_store
from checks.support.verdicts import VerdictCache
from checks.support.verify import verify_dump
from core.config.aws import AwsConfig
from core.config.schema import ObjectiveSpec
from core.config.stores import BackupsConfig
from sandbox.pgcluster import PgCluster, free_port

SEG = 16 * 1024 * 1024


class ListedStore:
    """A store whose listing is already in memory: times drwatch's analysis, not I/O."""

    url = "mem://bench/"

    def __init__(self, objects: list[StoredObject]) -> None:
        self.objects = objects

    def list(self) -> Iterator[StoredObject]:
        return iter(self.objects)

    def chunks(self, key: str) -> Iterator[bytes]:
        raise NotImplementedError

    def head(self, key: str) -> StoredObject | None:
        raise NotImplementedError


def cpu(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def analysis(names: int, dumps: int) -> None:
    print("| WAL segment names | continuity analysis CPU (best of 5) | per name |")
    print("|---:|---:|---:|")
    for n in (names // 4, names // 2, names):
        # Two timelines, a base backup label, compressed names in a sub-directory, one gap.
        objects = [
            StoredObject(f"wal_005/{segment_name(1, i, SEG)}.lz4", SEG, float(i))
            for i in range(n // 2)
        ]
        objects.append(StoredObject("wal_005/00000002.history", 40, float(n)))
        objects += [
            StoredObject(f"wal_005/{segment_name(2, i, SEG)}.lz4", SEG, float(i))
            for i in range(n // 2, n)
            if i != n - 10
        ]
        objects.append(StoredObject(f"{segment_name(1, 3, SEG)}.00000028.backup", 300, 3.0))
        switch = f"1\t0/{(n // 2) * SEG:X}\tno recovery target\n"  # timeline 1 ends at n // 2
        result = read_continuity(objects, SEG, lambda _, text=switch: text)  # type: ignore[misc]
        assert result.missing == 1, result
        seconds = cpu(lambda objs=objects, text=switch: read_continuity(objs, SEG, lambda _: text))  # type: ignore[misc]
        print(f"| {n:,} | {seconds * 1000:,.1f} ms | {seconds / n * 1e6:.2f} µs |")
    now = time.time()
    listing = [
        StoredObject(f"app-{i:05d}.dump", 10**9 + i, now - (dumps - i) * 3600) for i in range(dumps)
    ]
    listing += [StoredObject(f"wal/{segment_name(1, i, SEG)}", SEG, now) for i in range(names)]
    config = BackupsConfig.model_validate({"store": "file:///x/", "verify": "none"})
    check = BackupsCheck(
        config,
        ListedStore(listing),
        VerdictCache(None),
        ObjectiveSpec.model_construct(rpo=3600.0, rto=None),
    )
    seconds = cpu(check.collect)
    print(
        f"\nInventory of {dumps:,} dumps among {len(listing):,} keys (patterns, retention, anomaly): {seconds * 1000:,.1f} ms CPU"
    )


def verification(dump_mb: int) -> None:
    cluster = PgCluster().init(None).start()
    work = Path(tempfile.mkdtemp(prefix="drwatch-bench-"))
    try:
        rows = dump_mb * 1024 * 1024 // 120
        cluster.execute("CREATE DATABASE big")
        cluster.execute(
            "CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS body "
            f"FROM generate_series(1, {rows}) g",
            "big",
        )
        dump = cluster.dump("big", cluster.backups / "dumps")
        # Uncompressed (-Z0) to reach the size with less data; compressed dumps cost pg_restore
        # more CPU per byte, so this under-states the verification overhead, if anything.
        cluster._run(
            str(cluster.bin / "pg_dump"),
            "-Fc",
            "-Z0",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "-f",
            str(dump),
            "big",
        )
        size = dump.stat().st_size
        shutil.copy(dump, work / "big.dump")
        print(
            f"\n| {size / 2**20:,.0f} MiB dump | plain read | full verification (pg_restore -f /dev/null) | overhead |"
        )
        print("|---|---:|---:|---:|")
        stores = [("file://", FileStore("file://bench/", work))]
        from moto.server import ThreadedMotoServer

        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{port}"
            aws = AwsConfig.model_validate(
                {
                    "endpoint_url": endpoint,
                    "region": "us-east-1",
                    "access_key_id": "a",
                    "secret_access_key": "b",
                }
            )
            s3 = open_store("s3://bench/dumps/", aws)
            s3.client.create_bucket(Bucket="bench")  # type: ignore[attr-defined]
            s3.client.upload_file(str(dump), "bench", "dumps/big.dump")  # type: ignore[attr-defined]
            stores.append(("s3:// (moto, loopback)", s3))
            for name, store in stores:
                started = time.monotonic()
                read = sum(len(b) for b in store.chunks("big.dump"))
                plain = time.monotonic() - started
                verdict = verify_dump(store, "big.dump", "full", time.monotonic() + 3600, 1 << 40)
                assert verdict.ok and verdict.bytes_read == read == size, verdict
                print(
                    f"| {name} | {plain:.1f} s | {verdict.duration_seconds:.1f} s | {verdict.duration_seconds / plain:.1f}× |"
                )
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cluster.destroy()


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--dumps", type=int, default=1000)
    parser.add_argument("--dump-mb", type=int, default=1024)
    args = parser.parse_args()
    analysis(args.names, args.dumps)
    verification(args.dump_mb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
