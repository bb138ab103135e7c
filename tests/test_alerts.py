"""The shipped alert rules: promtool-clean, unit-tested alert by alert, pointing at real runbook
sections and real metrics; the Alertmanager example passes amtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from core.config.schema import SCENARIOS
from docs.metricsdoc import all_metrics

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.yml"))
RULE_FILES.remove(ALERTS / "alertmanager.example.yml")
TEST_FILES = sorted((ALERTS / "tests").glob("*.test.yml"))


def _all_rules() -> list[dict[str, object]]:
    rules = [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    assert len(RULE_FILES) == 7 and len(rules) >= 40, "the rule files were not found"
    return rules


def _rules() -> list[dict[str, object]]:
    """The alerting rules."""
    return [rule for rule in _all_rules() if "alert" in rule]


def _recorded() -> set[str]:
    return {str(rule["record"]) for rule in _all_rules() if "record" in rule}


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        ["promtool", "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_pass() -> None:
    proc = subprocess.run(
        ["promtool", "test", "rules", *(p.name for p in TEST_FILES)],
        cwd=ALERTS / "tests",
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {str(rule["alert"]) for rule in _rules()}
    assert len(TEST_FILES) >= 6 and firing and quiet, "no rule test found"
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown staying quiet"


def test_every_alert_is_labelled_and_annotated() -> None:
    for rule in _rules():
        labels = rule["labels"]
        annotations = rule["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in ("page", "ticket"), rule["alert"]
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]


def test_runbook_urls_point_at_existing_sections() -> None:
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', (ROOT / "docs" / "runbook.md").read_text()))
    for rule in _rules():
        url = str(rule["annotations"]["runbook_url"])  # type: ignore[index]
        anchor = url.split("#", 1)[1]
        wanted = (
            {anchor.replace("{{ $labels.scenario }}", s) for s in SCENARIOS}
            if "{{" in anchor
            else {anchor}
        )
        assert wanted <= anchors, (rule["alert"], wanted - anchors)


def test_rules_use_only_declared_metrics() -> None:
    """Every rule reads drwatch's declared metrics, or series the shipped rules record."""
    declared, recorded = {spec.name for spec in all_metrics()}, _recorded()
    for rule in _all_rules():
        expr = str(rule["expr"])
        used = set(re.findall(r"\bdrwatch_[a-z0-9_]+", expr))
        reads = set(re.findall(r"\b(?:slo|drwatch):[a-z0-9_:]+", expr))
        name = rule.get("alert") or rule.get("record")
        assert used or reads, (name, "reads no drwatch metric")
        assert used <= declared, (name, used - declared)
        assert reads <= recorded, (name, reads - recorded)


def test_the_slo_rules_are_what_alerts_slo_generates() -> None:
    from alerts.slo import render

    assert (ALERTS / "slo.yml").read_text() == render(), "alerts/slo.yml is stale: `make rules`"


def test_slo_names_follow_sloths_conventions() -> None:
    """Sloth's recorded names and labels, so its dashboards read drwatch's SLOs."""
    recorded = _recorded()
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in recorded
    assert {"slo:objective:ratio", "slo:error_budget:ratio", "slo:current_burn_rate:ratio",
            "slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio",
            "slo:time_period:days"} <= recorded  # fmt: skip
    for rule in _all_rules():
        if str(rule.get("record", "")).startswith("drwatch:") and "sli_error" in str(
            rule["record"]
        ):
            assert rule["labels"] == {"sloth_service": "drwatch", "sloth_slo": rule["record"][8:11]}


def test_alertmanager_example_is_valid() -> None:
    proc = subprocess.run(
        ["amtool", "check-config", str(ALERTS / "alertmanager.example.yml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_each_alert_is_named_in_the_runbook_section_it_links() -> None:
    """Whoever is paged searches the runbook for the alert's name: the section its link opens
    names it."""
    text = (ROOT / "docs" / "runbook.md").read_text()
    sections = dict(re.findall(r'<a id="([^"]+)"></a>(.*?)(?=<a id="|\Z)', text, re.S))
    for rule in _rules():
        anchor = str(rule["annotations"]["runbook_url"]).split("#", 1)[1]  # type: ignore[index]
        for each in ({anchor.replace("{{ $labels.scenario }}", s) for s in SCENARIOS}
                     if "{{" in anchor else {anchor}):  # fmt: skip
            assert f"`{rule['alert']}`" in sections[each], (rule["alert"], each)
