from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import LoadedConfig, parse_config
from sandbox.pgcluster import ARCHIVE_COPY, PgCluster


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A fresh primary archiving into its own directory."""
    c = PgCluster().init(ARCHIVE_COPY).start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[PgCluster]:
    """One cluster for tests that only read or own their tables."""
    c = PgCluster().init(None).start()
    try:
        yield c
    finally:
        c.destroy()


def make_config(targets: list[dict[str, Any]], **top: Any) -> LoadedConfig:
    return parse_config(yaml.safe_dump({"targets": targets, **top}), env={})


def write_config(path: Path, targets: list[dict[str, Any]], **top: Any) -> Path:
    path.write_text(yaml.safe_dump({"targets": targets, **top}))
    return path
