"""The version drwatch reports (status page, drwatch_build_info, --version) is the project's."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from exporter import __version__

ROOT = Path(__file__).resolve().parent.parent
PROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_installed_and_source_tree_versions(tmp_path: Path) -> None:
    assert __version__ == PROJECT_VERSION  # the (editable) install the tests run from
    # A source tree with no package metadata anywhere (-S: no site-packages either):
    (tmp_path / "exporter").mkdir()
    shutil.copy(ROOT / "exporter" / "__init__.py", tmp_path / "exporter")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    source = subprocess.run(
        [sys.executable, "-S", "-c", "import exporter; print(exporter.__version__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert source.stdout.strip() == f"{PROJECT_VERSION}+source", source.stderr
