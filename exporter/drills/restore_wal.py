"""The `restore_command` a PITR drill gives its scratch server: one WAL file from the target's
WAL store, plain or gzip-compressed, to where PostgreSQL asks for it.

    python -m exporter.drills.restore_wal STORE_URL WAL_FILE DESTINATION

Exits 1 when the file is not in the store: that is how recovery learns the archive ends there.
"""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from pathlib import Path

from checks.support.stores import open_store
from core.config.aws import AwsConfig
from core.errors import CheckError


def fetch(store_url: str, name: str, destination: Path) -> bool:
    store = open_store(store_url, AwsConfig())  # endpoint, region, credentials: AWS_* variables
    for key, compressed in ((name, False), (f"{name}.gz", True)):
        found = store.head(key) or next(
            (o for o in store.list() if o.key.endswith("/" + key)), None
        )
        if found is None:
            continue
        partial = destination.with_name(destination.name + ".drwatch")
        with open(partial, "wb") as out:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if compressed else None
            for block in store.chunks(found.key):
                out.write(inflate.decompress(block) if inflate else block)
            if inflate:
                out.write(inflate.flush())
        os.replace(partial, destination)
        return True
    return False


def main(argv: list[str]) -> int:
    store_url, name, destination = argv
    try:
        return 0 if fetch(store_url, name, Path(destination)) else 1
    except (CheckError, OSError, gzip.BadGzipFile, zlib.error) as exc:
        print(f"drwatch restore_wal {name}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
