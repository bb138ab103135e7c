"""The evidence report as one self-contained HTML page: no script, no fetch; its pictures are
inline SVG (`pictures`), every value escaped."""

from __future__ import annotations

import html
from typing import Any

from exporter.reports.controls import anchor
from exporter.reports.pictures import exposure_chart, rto_chart
from exporter.reports.render import (
    CONTROL_COLUMNS,
    DRILL_COLUMNS,
    SUMMARY_COLUMNS,
    drill_row,
    evidence_text,
    failover_row,
    summary_row,
    tampering,
    verdict_class,
)
from exporter.reports.verdict import line


def html_page(doc: dict[str, Any]) -> str:
    e = html.escape
    body = [
        "<h1>drwatch evidence report</h1>",
        f"<p>Period: {e(doc['since'])} to {e(doc['until'])}. Generated {e(doc['generated_at'])} "
        f"by drwatch {e(doc['drwatch_version'])} from <code>{e(doc['config'])}</code>.</p>",
        '<h2>Verdict</h2><ul id="verdict">',
        *(f'<li class="bad tampered">{e(x)}</li>' for x in tampering(doc)),
        *(f'<li class="{verdict_class(v)}">{e(line(v))}</li>' for v in doc["verdicts"]),
        "</ul>",
    ]
    for target in doc["targets"]:
        body.append(f"<h2>{e(target['target'])}</h2>")
        rows = []
        for s in target["scenarios"]:
            cells = summary_row(s)
            bad = (s.get("schedule") and not s["schedule"]["kept"]) or s["rto"][
                "within_objective"
            ] is False
            rows.append((cells, ' class="bad"' if bad else ""))
        body.append(_html_table(SUMMARY_COLUMNS, rows, "summary"))
        for s in target["scenarios"]:
            body.append(_pictures(target["target"], s))
            if s["records"]:
                body.append(f"<h3>{e(s['scenario'])}: drills</h3>")
                body.append(_html_table(DRILL_COLUMNS, [
                    (drill_row(r), f' class="{e(r["outcome"])}"') for r in s["records"]
                ], "drills"))  # fmt: skip
            if s.get("failovers"):
                body.append(f"<h3>{e(s['scenario'])}: failovers</h3>")
                body.append(_html_table(("completed", "source", "took", "how measured"),
                                        [(failover_row(f), "") for f in s["failovers"]],
                                        "failovers"))  # fmt: skip
    body.append("<h2>Controls</h2>")
    body.append(_controls(doc["controls"]))
    body.append("<h2>How this report was made</h2><ul>")
    body += [f"<li>{e(x)}</li>" for x in doc["how_made"]]
    body.append("</ul><h2>What it cannot show</h2><ul>")
    body += [f"<li>{e(x)}</li>" for x in doc["cannot_show"]]
    body.append("</ul>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>drwatch evidence report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#1f2328}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{padding:.3em .6em;text-align:left;border-bottom:1px solid #d0d7de;vertical-align:top}}
tr.bad td,tr.failed td{{background:#ffebe9}} tr.deferred td{{background:#fff8c5}}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""


def _html_table(header: tuple[str, ...], rows: list[tuple[list[str], str]], ident: str) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    lines = [f'<table class="{ident}"><tr>{head}</tr>']
    for cells, attrs in rows:
        lines.append(f"<tr{attrs}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    return "\n".join([*lines, "</table>"])


def _pictures(target: str, s: dict[str, Any]) -> str:
    """The scenario's RTO per drill and its exposure over the period, each against its
    objective, under an anchor the controls table points at."""
    charts = [f'<div class="pictures" id="{html.escape(anchor(target, s["scenario"]))}">']
    if s["records"]:
        charts.append(rto_chart(s["scenario"], s["records"], s["rto"]["objective_seconds"]))
    if s.get("exposure_series"):
        charts.append(
            exposure_chart(s["scenario"], s["exposure_series"], s["rpo"]["objective_seconds"])
        )
    return "".join([*charts, "</div>"])


def _controls(rows: list[dict[str, Any]]) -> str:
    e = html.escape
    lines = ['<table class="controls"><tr>' + "".join(f"<th>{e(h)}</th>" for h in CONTROL_COLUMNS)
             + "</tr>"]  # fmt: skip
    for c in rows:
        links = "; ".join(
            f'<a href="#{e(x["anchor"])}">{e(x["target"])} / {e(x["scenario"])}</a>: '
            f"{e(x['shows'])}"
            for x in c["evidence"]
        ) or e(evidence_text(c))
        lines.append(f"<tr><td>{e(c['framework'])}</td><td>{e(c['control'])}</td>"
                     f"<td>{e(c['asks'])}</td><td>{links}</td></tr>")  # fmt: skip
    return "\n".join([*lines, "</table>"])
