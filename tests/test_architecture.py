"""The import contract `make lint` enforces: imports run one way (exporter -> checks -> core)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "checks", "exporter", "docs", "alerts", "sandbox")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_upward_import_fails_the_lint(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    kept = _lint_imports(tree)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout

    base = tree / "checks" / "base.py"
    base.write_text(base.read_text() + "\nimport exporter.daemon  # upward: checks -> exporter\n")
    broken = _lint_imports(tree)
    assert broken.returncode != 0
    assert "checks.base -> exporter.daemon" in broken.stdout


def test_checks_never_import_each_other() -> None:
    """Check modules share only checks/base, checks/definition and checks/support."""
    shared = ("checks.base", "checks.definition", "checks.support")
    not_checks = {"__init__", "base", "definition", "registry"}
    modules = [p for p in (ROOT / "checks").glob("*.py") if p.stem not in not_checks]
    assert len(modules) >= 12, "the check modules were not found"
    for module in modules:
        for line in module.read_text().splitlines():
            if line.startswith(("from checks", "import checks")):
                imported = line.split()[1]
                assert imported.startswith(shared), f"{module.name} imports {imported}"
