"""The import contract `make lint` enforces: imports run one way (exporter -> checks -> core)."""

from __future__ import annotations

import os
import re
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
    """Check modules share only checks/base, checks/definition, the backup tools and
    checks/support."""
    shared = ("checks.base", "checks.definition", "checks.backup_tools", "checks.support")
    not_checks = {"__init__", "base", "definition", "registry"}
    modules = [p for p in (ROOT / "checks").glob("*.py") if p.stem not in not_checks]
    assert len(modules) >= 12, "the check modules were not found"
    for module in modules:
        for line in module.read_text().splitlines():
            if line.startswith(("from checks", "import checks")):
                imported = line.split()[1]
                assert imported.startswith(shared), f"{module.name} imports {imported}"


# What only a backup tool writes: its files and directories in a store.
TOOL_LAYOUT = re.compile(
    r"basebackups_005|wal_005|_backup_stop_sentinel|backup\.info|backup_manifest|data\.tar"
    r"|base\.tar|pg_wal\.tar|\bwals/|backup\.manifest|tablespace_map"
)


def test_only_the_tools_package_names_a_tools_files() -> None:
    """Each tool's layout is its module's: no other module of drwatch names a tool's files (in
    code: a name or pattern in a string without spaces; messages, docstrings and comments may
    say what they are about)."""
    tools = ROOT / "checks" / "backup_tools"
    offenders = []
    for package in ("checks", "exporter", "core"):
        for module in (ROOT / package).rglob("*.py"):
            if tools in module.parents:
                continue
            for number, line in enumerate(module.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                names = [q for q in re.findall(r"\"([^\" ]*)\"", code) if q]
                if any(TOOL_LAYOUT.search(name) for name in names):
                    offenders.append(f"{module.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_each_tool_registers_once() -> None:
    """One module per tool, each in the registry once; every layout the config accepts is one
    a tool declares."""
    from typing import get_args

    from checks.backup_tools.registry import CATALOGUE_LAYOUTS, TOOLS, WAL_LAYOUTS
    from core.config.stores import BackupsConfig

    modules = {p.stem for p in (ROOT / "checks" / "backup_tools").glob("*.py")}
    names = [tool.name for tool in TOOLS]
    assert sorted(names) == sorted(set(names))
    assert set(names) == modules - {"__init__", "base", "registry"}
    wal = get_args(BackupsConfig.model_fields["wal_layout"].annotation)
    base = get_args(BackupsConfig.model_fields["base_layout"].annotation)
    assert set(wal) - {"auto"} == set(WAL_LAYOUTS)
    assert set(base) - {"auto"} == set(CATALOGUE_LAYOUTS)
