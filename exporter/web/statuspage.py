"""The status page at `/` (and `/status.json`): every check and every recovery objective at a
glance, for when Grafana is part of the outage. Self-contained HTML, every value escaped."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import Any

from checks.base import Status, worst
from checks.registry import definition
from core.config.schema import Config
from core.durations import format_duration
from exporter import __version__
from exporter.runtime.current import Current
from exporter.runtime.exposures import exposure_rows
from exporter.runtime.results import Snapshot

_COLOURS = {"OK": "#1a7f37", "WARNING": "#9a6700", "CRITICAL": "#cf222e", "UNKNOWN": "#6e7781"}


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{format_duration(seconds)} ago"


def status_document(
    current: Current,
    snap: Snapshot,
    now: float,
    drills: list[dict[str, Any]] | None = None,
    compliance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    checks = []
    for job in current.jobs:
        result = snap.results.get(job.key)
        last_success = snap.last_success.get(job.key)
        checks.append(
            {
                "target": job.target,
                "check": job.check,
                "section": definition(job.check).section,
                "status": result.status.name if result else "UNKNOWN",
                "summary": result.summary if result else "not run yet",
                "up": result.up if result else False,
                "last_run_seconds_ago": now - result.finished_at if result else None,
                "last_success_seconds_ago": now - last_success if last_success else None,
            }
        )
    exposures = exposure_rows(current.config, current.jobs, snap.results, compliance)
    for row in exposures:
        exposure, objective = row["exposure_seconds"], row["objective_seconds"]
        row["breached"] = (
            None if exposure is None or objective is None else float(exposure) > objective
        )
    # The headline counts every check and every drill that has run: a failed drill under a big
    # OK is what it must never show.
    statuses = [r.status for r in snap.results.values()]
    statuses += [Status[d["status"]] for d in drills or [] if d["last_run_seconds_ago"] is not None]
    return {
        "version": __version__,
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "status": worst(statuses).name if statuses else "UNKNOWN",
        "checks": checks,
        "exposures": exposures,
        "off": [{"target": o.target, "section": o.section, "why": o.why} for o in current.off],
        "drills": drills or [],
        "runbook_url": current.config.runbook_url if current.config is not None else "",
    }


def _runbook(doc: dict[str, Any]) -> str:
    """The configured runbook address (`runbook_url`), or drwatch's own."""
    return str(doc.get("runbook_url") or Config.model_fields["runbook_url"].default)


def _objective_text(seconds: object) -> str:
    """An objective no one set is "not set": "unmeasured" is for an exposure."""
    return "not set" if seconds is None else _exposure_text(seconds)


def _exposure_text(seconds: object) -> str:
    if seconds is None:
        return "unmeasured"
    if isinstance(seconds, str):
        return "∞"
    assert isinstance(seconds, float | int)
    return "∞" if math.isinf(seconds) else format_duration(float(seconds))


def _check_rows(doc: dict[str, Any]) -> list[str]:
    e = html.escape
    rows = []
    runbook = _runbook(doc)
    for c in doc["checks"]:
        colour = _COLOURS[c["status"]]
        # A row that is not OK links to what its check's runbook section says to do.
        link = (
            f' <a href="{e(runbook)}#check-{e(c["check"])}">runbook</a>'
            if c["status"] in ("WARNING", "CRITICAL")
            else ""
        )
        rows.append(
            f'<tr class="check status-{e(c["status"].lower())}" data-target="{e(c["target"])}" '
            f'data-check="{e(c["check"])}" data-section="{e(c["section"])}">'
            f"<td>{e(c['target'])}</td><td>{e(c['check'])}</td>"
            f'<td class="status" style="background:{colour}">{e(c["status"])}</td>'
            f'<td class="summary">{e(c["summary"])}{link}</td>'
            f"<td>{e(_ago(c['last_success_seconds_ago']))}</td></tr>"
        )
    for off in doc["off"]:  # greyed: nothing is watched there, and it says why
        rows.append(
            f'<tr class="off" data-target="{e(off["target"])}" data-section="{e(off["section"])}"'
            f' style="color:#6e7781"><td>{e(off["target"])}</td><td>{e(off["section"])}</td>'
            f'<td class="status" style="background:#d0d7de;color:#57606a">OFF</td>'
            f'<td class="summary" colspan="2">{e(off["why"])}</td></tr>'
        )
    return rows


def _objective_rows(doc: dict[str, Any]) -> list[str]:
    e = html.escape
    rows = []
    for x in doc["exposures"]:
        state = {True: "CRITICAL", False: "OK", None: "UNKNOWN"}[x["breached"]]
        anchor = f"rpo-breached-{x['scenario']}" if x["breached"] is not False else ""
        runbook = _runbook(doc)
        link = f' <a href="{e(runbook)}#{e(anchor)}">runbook</a>' if anchor else ""
        objective = x["objective_seconds"]
        within = _compliance_text(x.get("compliance_30d"))
        rows.append(
            f'<tr class="exposure status-{state.lower()}" data-target="{e(x["target"])}" '
            f'data-scenario="{e(x["scenario"])}">'
            f"<td>{e(x['target'])}</td><td>{e(x['scenario'])}</td>"
            f'<td class="status" style="background:{_COLOURS[state]}">'
            f"{e(_exposure_text(x['exposure_seconds']))}</td>"
            f"<td>{e(_objective_text(objective))}</td>"
            f'<td class="compliance">{e(within)}</td><td>{link}</td></tr>'
        )
    return rows


def _compliance_text(c: dict[str, Any] | None) -> str:
    """ "99.95% of 30 d" from drwatch's own record; what it covers when it is younger."""
    if not c or c.get("ratio") is None:
        return "not recorded yet"
    days = c["minutes_recorded"] / 1440
    span = "30 d" if days >= 29.9 else f"the {format_duration(c['minutes_recorded'] * 60)} recorded"
    budget = c.get("error_budget_remaining")
    left = "" if budget is None else f", {max(budget, 0.0) * 100:.0f}% of the budget left"
    return f"{c['ratio'] * 100:.3f}% of {span}{left}"  # as the report says it


def _drills_table(rows: list[str]) -> str:
    if not rows:
        return ""
    return (
        '<h2>Restore drills</h2>\n<table id="drills"><tr><th>target</th><th>scenario</th>'
        "<th>last drill</th><th>measured RTO</th><th>objective (RTO)</th>"
        "<th>forecast in 30 d</th><th>last pass</th><th>runbook test</th><th>next drill</th>"
        f"<th>summary</th></tr>\n{''.join(rows)}\n</table>"
    )


def _drill_rows(doc: dict[str, Any]) -> list[str]:
    e = html.escape
    rows = []
    for d in doc.get("drills", []):
        measured, objective = d["rto_measured_seconds"], d["rto_objective_seconds"]
        slow = measured is not None and objective is not None and measured > objective
        rto = "not measured yet" if measured is None else format_duration(measured)
        over = ' style="color:#cf222e;font-weight:bold"' if slow else ""  # slower than the RTO
        forecast = (d.get("rto_forecast_seconds") or {}).get("30d")
        late = objective is not None and forecast is not None and forecast > objective
        ahead = ' style="color:#cf222e;font-weight:bold"' if late else ""
        overdue = d.get("overdue")
        due = ' style="color:#cf222e;font-weight:bold"' if overdue else ""
        test = f"{d['test']} ({d['frequency']})" if d.get("test") else ""
        nxt = d.get("next_run_in_seconds")
        schedule = ("OVERDUE; " if overdue else "") + (
            f"in {format_duration(max(0.0, nxt))}" if nxt is not None else "not scheduled here"
        )
        path = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("restored by", d.get("restored_by")),
                ("WAL from", d.get("wal_from")),
                ("data loss measured", _loss_text(d.get("measured_data_loss_seconds"))),
            )
            if value
        )
        summary = d["summary"] + (f" ({path})" if path else "")
        rows.append(
            f'<tr class="drill status-{e(d["status"].lower())}" data-target="{e(d["target"])}" '
            f'data-scenario="{e(d["scenario"])}"><td>{e(d["target"])}</td>'
            f"<td>{e(d['scenario'])}</td>"
            f'<td class="status" style="background:{_COLOURS[d["status"]]}">{e(d["status"])}</td>'
            f'<td class="rto"{over}>{e(rto)}</td>'
            f"<td>{e(_objective_text(objective))}</td>"
            f'<td class="forecast"{ahead}>'
            f"{e('-' if forecast is None else format_duration(forecast))}</td>"
            f"<td>{e(_ago(d['last_success_seconds_ago']))}</td>"
            f"<td>{e(test)}</td>"
            f'<td class="schedule"{due}>{e(schedule)}</td>'
            f'<td class="summary">{e(summary)}</td></tr>'
        )
    return rows


def _loss_text(seconds: object) -> str | None:
    return None if not isinstance(seconds, int | float) else format_duration(float(seconds))


def render(doc: dict[str, Any], refresh: int | None = None) -> str:
    e = html.escape
    rows, objectives, drills = _check_rows(doc), _objective_rows(doc), _drill_rows(doc)
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    overall = doc["status"]
    generated = e(doc.get("generated_at", ""))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{meta}<title>drwatch: {e(overall)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#1f2328}}
table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{padding:.35em .8em;text-align:left;border-bottom:1px solid #d0d7de;vertical-align:top}}
td.status{{color:#fff;font-weight:bold;white-space:nowrap}}
td:nth-child(-n+2){{white-space:nowrap}}
h1 span{{color:#fff;padding:.1em .5em;border-radius:.3em}}
</style></head><body>
<h1>drwatch <span id="overall" style="background:{_COLOURS[overall]}">{e(overall)}</span></h1>
<p>drwatch {e(doc["version"])} · generated <time id="generated">{generated}</time>
· <a href="/metrics">/metrics</a> ·
<a href="/status.json">/status.json</a> · <a href="{e(_runbook(doc))}">runbook</a> ·
<a href="/?refresh=30">refresh every 30 s</a></p>
<h2>Recovery objectives</h2>
<table id="objectives"><tr><th>target</th><th>scenario</th><th>data at risk</th>
<th>objective (RPO)</th><th>within objective</th><th></th></tr>
{"".join(objectives) or '<tr><td colspan="6">no recovery scenario configured</td></tr>'}
</table>
{_drills_table(drills)}
<h2>Checks</h2>
<table id="checks"><tr><th>target</th><th>check</th><th>status</th><th>summary</th>
<th>last success</th></tr>
{"".join(rows) or '<tr><td colspan="5">no check configured</td></tr>'}
</table></body></html>"""
