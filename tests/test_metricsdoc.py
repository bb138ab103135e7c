"""The metrics reference is generated from the declarations and must not drift."""

from __future__ import annotations

import re
from pathlib import Path

from docs.metricsdoc import all_metrics, readme_with_table, render

ROOT = Path(__file__).resolve().parent.parent


def test_docs_metrics_md_is_current() -> None:
    committed = (ROOT / "docs" / "metrics.md").read_text()
    assert committed == render(), "docs/metrics.md is stale: run `make docs`"


def test_declarations_follow_the_conventions() -> None:
    names = [spec.name for spec in all_metrics()]
    assert len(names) >= 100, "the declarations were not found"
    assert len(names) == len(set(names)), "a metric is declared twice"
    for spec in all_metrics():
        assert re.fullmatch(r"drwatch_[a-z0-9_]+", spec.name), spec.name
        assert spec.name.endswith("_total") == (spec.type == "counter"), spec.name
        assert spec.help.endswith("."), spec.name
        assert "target" not in spec.labels or spec.name.startswith(
            (
                "drwatch_check",
                "drwatch_rpo",
                "drwatch_rto",
                "drwatch_config",
                "drwatch_remediation",
                "drwatch_drill",
                "drwatch_failover",
                "drwatch_slo",
            )
        )


def test_readme_checks_table_is_current() -> None:
    committed = (ROOT / "README.md").read_text()
    assert committed == readme_with_table(committed), "README's check table is stale: `make docs`"
