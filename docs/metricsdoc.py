"""Generates docs/metrics.md from the metric declarations: `python -m docs.metricsdoc`."""

from __future__ import annotations

from checks import (
    backups,
    connections,
    elasticache,
    rds,
    redis_persistence,
    redis_replication,
    redis_snapshots,
    replica_copy,
    replication,
    verification,
    wal_archive,
    wal_archiving,
)
from checks.base import MetricSpec
from exporter.remediation import metrics as remediation_metrics
from exporter.web.metrics import SELF_METRICS

SECTIONS: tuple[tuple[str, str, tuple[MetricSpec, ...]], ...] = (
    ("drwatch itself, objectives and exposures", "", SELF_METRICS),
    ("wal_archiving", "check", wal_archiving.METRICS),
    ("replication", "check", replication.METRICS),
    ("connections", "check", connections.METRICS),
    ("verification", "check", verification.METRICS),
    ("backups", "check", backups.METRICS),
    ("wal_archive", "check", wal_archive.METRICS),
    ("replica_copy", "check", replica_copy.METRICS),
    ("rds", "check", rds.METRICS),
    ("redis_persistence", "check", redis_persistence.METRICS),
    ("redis_replication", "check", redis_replication.METRICS),
    ("redis_snapshots", "check", redis_snapshots.METRICS),
    ("elasticache", "check", elasticache.METRICS),
    ("remediation", "", remediation_metrics.METRICS),
)


def all_metrics() -> list[MetricSpec]:
    return [spec for _, _, specs in SECTIONS for spec in specs]


def render() -> str:
    lines = [
        "# Metrics reference",
        "",
        "Generated from the metric declarations by `make docs` (`python -m docs.metricsdoc`);",
        "a test fails when this file and the code disagree. Every metric about a monitored system",
        "also carries the `target` label. Counters are exposed with the `_total` suffix shown.",
        "Custom SQL metrics (`verification.custom`) are named `drwatch_custom_<name>` and carry",
        "the labels their config declares.",
        "",
    ]
    for title, kind, specs in SECTIONS:
        heading = f"## `{title}` check" if kind == "check" else f"## {title}"
        lines += [heading, "", "| metric | type | labels | meaning |", "|---|---|---|---|"]
        for spec in specs:
            labels = spec.labels if not kind else ("target", *spec.labels)
            label_text = ", ".join(f"`{label}`" for label in labels) or "—"
            help_text = spec.help.replace("|", "\\|")
            lines.append(f"| `{spec.name}` | {spec.type} | {label_text} | {help_text} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
