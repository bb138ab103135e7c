"""The PrometheusRule manifest is generated from the rule files."""

from __future__ import annotations

import yaml

from alerts.prometheusrule import ALERTS, render, rule_files


def test_prometheusrule_manifest_is_generated_from_the_rule_files() -> None:
    committed = (
        ALERTS.parent / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"
    ).read_text()
    assert committed == render(rule_files()), "stale: run `make rules`"
    manifest = yaml.safe_load(committed)
    assert manifest["kind"] == "PrometheusRule"
    groups = [g for p in rule_files() for g in yaml.safe_load(p.read_text())["groups"]]
    assert manifest["spec"]["groups"] == groups  # the same rules, nothing lost in rendering
