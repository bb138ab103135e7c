"""`drwatch report`: the evidence report from drwatch's records in state_dir."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from core.durations import parse_duration
from exporter.cli.load import load_or_report
from exporter.reports.evidence import build
from exporter.reports.render import html_page, markdown


def report(path: str, since: str, fmt: str, output: str | None) -> int:
    from exporter.logs import setup_logging

    setup_logging("warning")
    try:
        period = parse_duration(since)
    except ValueError as exc:
        print(f"--since {since!r}: {exc}", file=sys.stderr)
        return 2
    loaded = load_or_report(path)
    if loaded is None:
        return 3
    now = time.time()
    doc = build(loaded.config, path, now - period, now)
    text = (
        json.dumps(doc, indent=2) + "\n" if fmt == "json"
        else html_page(doc) if fmt == "html"
        else markdown(doc)
    )  # fmt: skip
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
    return 0
