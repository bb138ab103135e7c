"""The evidence report as Markdown, and the rows and lines its HTML page (htmlpage) shares."""

from __future__ import annotations

import html
from typing import Any

from core.durations import format_duration
from exporter.reports.verdict import NOT_MEASURED, NOT_MET, line

SUMMARY_COLUMNS = (
    "scenario", "runbook test", "drills run", "passed", "failed", "deferred", "RTO median",
    "RTO worst", "RTO objective", "schedule kept", "longest without a pass",
    "worst RPO exposure", "worst data loss measured", "RPO objective", "time within RPO",
)  # fmt: skip
DRILL_COLUMNS = (
    "started", "outcome", "took", "point", "recovered to", "data loss measured", "restored by",
    "backup", "summary",
)  # fmt: skip


def _seconds(value: Any) -> str:
    return "-" if value is None else format_duration(float(value))


def summary_row(s: dict[str, Any]) -> list[str]:
    drills, rto, rpo = s["drills"], s["rto"], s["rpo"]
    schedule = s.get("schedule")
    within = rpo.get("ratio")
    rto_mark = {True: " (within)", False: " (over)", None: ""}[rto["within_objective"]]
    return [
        s["scenario"],
        f"{schedule['test']} ({schedule['frequency']})" if schedule else "-",
        str(drills["run"]),
        str(drills["passed"]),
        str(drills["failed"]),
        str(drills["deferred"]),
        _seconds(rto["median_seconds"]),
        _seconds(rto["worst_seconds"]) + rto_mark,
        _seconds(rto["objective_seconds"]),
        ("yes" if schedule["kept"] else "NO") if schedule else "-",
        _seconds(schedule["longest_without_pass_seconds"]) if schedule else "-",
        _seconds(rpo.get("worst_exposure_seconds")),
        _seconds(rpo.get("measured_loss_worst_seconds")),
        _seconds(rpo["objective_seconds"]),
        "not measured" if within is None or not rpo.get("minutes_recorded")
        else f"{within * 100:.3f}% of {rpo['minutes_recorded']} min",
    ]


def drill_row(r: dict[str, Any]) -> list[str]:
    backup = r["backup"]
    name = str(backup.get("backup", "-"))
    digest = backup.get("backup_sha256") or backup.get("backup_etag")
    return [
        r["started_at"],
        r["outcome"],
        _seconds(r["duration_seconds"]),
        r["point"] or "-",
        r["recovered_to"] or "-",
        _seconds(r.get("measured_data_loss_seconds")),
        _restore_path(r.get("restore_path") or {}),
        name + (f" (sha256 {digest[:16]}…)" if digest and "backup_sha256" in backup else
                f" (ETag {digest})" if digest else ""),
        r["summary"],
    ]  # fmt: skip


def _restore_path(path: dict[str, str]) -> str:
    """Who restored the copy and where its WAL came from: "barman-cloud; WAL: tool"."""
    if not path.get("method"):
        return "-"
    wal = f"; WAL: {path['wal_from']}" if path.get("wal_from") else ""
    return f"{path.get('restored_by') or path['method']} ({path['method']}){wal}"


def failover_row(f: dict[str, Any]) -> list[str]:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(f["completed_at"], UTC).isoformat(timespec="seconds")
    return [when, f["source"], _seconds(f["duration_seconds"]), f["detail"]]


def markdown(doc: dict[str, Any]) -> str:
    out = [
        "# drwatch evidence report",
        "",
        f"Period: {doc['since']} to {doc['until']}. Generated {doc['generated_at']} by drwatch "
        f"{doc['drwatch_version']} from `{_md(doc['config'])}`.",
        "",
        "## Verdict",
        "",
        *(f"- {_md(x)}" for x in tampering(doc)),
        *(f"- {_md(line(v))}" for v in doc["verdicts"]),
    ]
    for target in doc["targets"]:
        out += ["", f"## {_md(target['target'])}", "", *_md_table(SUMMARY_COLUMNS, [
            summary_row(s) for s in target["scenarios"]
        ])]  # fmt: skip
        for s in target["scenarios"]:
            if s["records"]:
                out += ["", f"### {_md(s['scenario'])}: drills", ""]
                out += _md_table(DRILL_COLUMNS, [drill_row(r) for r in s["records"]])
            if s.get("failovers"):
                out += ["", f"### {_md(s['scenario'])}: failovers", ""]
                out += _md_table(
                    ("completed", "source", "took", "how measured"),
                    [failover_row(f) for f in s["failovers"]],
                )
    out += ["", "## Controls", "", *_md_table(CONTROL_COLUMNS, [
        [c["framework"], c["control"], c["asks"], evidence_text(c)] for c in doc["controls"]
    ])]  # fmt: skip
    out += ["", "## How this report was made", ""] + [f"- {_md(x)}" for x in doc["how_made"]]
    out += ["", "## What it cannot show", ""] + [f"- {_md(x)}" for x in doc["cannot_show"]]
    return "\n".join(out) + "\n"


def tampering(doc: dict[str, Any]) -> list[str]:
    """The drill history changed after it was written: said before anything it shows."""
    integrity = doc.get("history_integrity") or {}
    return [
        f"WARNING: the drill history was changed after it was written, at line {b['line']}: "
        f"{b['why']}; what this report says of drills cannot be trusted"
        for b in integrity.get("breaks", [])
    ]


def verdict_class(v: dict[str, Any]) -> str:
    failed = NOT_MET in (v["rto"], v["rpo"]) or v["tested_on_schedule"] is False
    return "bad" if failed else "unproven" if NOT_MEASURED in (v["rto"], v["rpo"]) else "good"


CONTROL_COLUMNS = ("framework", "control", "what it asks", "what the records show")


def evidence_text(control: dict[str, Any]) -> str:
    return "; ".join(
        f"{x['target']} / {x['scenario']}: {x['shows']}" for x in control["evidence"]
    ) or "no record in the period"


def _md(text: str) -> str:
    """Text for a Markdown cell or line: whatever a backup key or a summary holds stays text
    where the Markdown is rendered (HTML as entities, links and code spans broken up)."""
    escaped = html.escape(str(text), quote=False).replace("\\", "\\\\")
    for mark in ("|", "[", "]", "`"):
        escaped = escaped.replace(mark, "\\" + mark)
    return escaped.replace("\n", " ")


def _md_table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
