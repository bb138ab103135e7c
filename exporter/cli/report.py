"""`drwatch report`: the evidence report from drwatch's records in state_dir."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from core.durations import parse_duration
from exporter.cli.load import load_or_report
from exporter.reports.evidence import build
from exporter.reports.htmlpage import html_page
from exporter.reports.render import markdown
from exporter.reports.signing import SUFFIX, SigningError, envelope, verify


def report(
    path: str, since: str, fmt: str, output: str | None, sign: str | None = None
) -> int:
    from exporter.logs import setup_logging

    setup_logging("warning")
    try:
        period = parse_duration(since)
    except ValueError as exc:
        print(f"--since {since!r}: {exc}", file=sys.stderr)
        return 2
    if sign is not None and (fmt != "json" or output is None):
        print("--sign signs the JSON report written to a file: add --format json --output FILE",
              file=sys.stderr)  # fmt: skip
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
        return 0
    Path(output).write_text(text)
    if sign is not None:
        try:
            signed = envelope(text.encode(), Path(output).name, Path(sign))
        except SigningError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        attestation = Path(output + SUFFIX)
        attestation.write_text(json.dumps(signed) + "\n")
        print(f"signed: {attestation}", file=sys.stderr)
    return 0


def verify_report(envelope_path: str, key: str | None, report_path: str | None) -> int:
    """`drwatch report verify FILE --key PUB`: 0 when the envelope's signature and the report's
    digest hold, 1 (saying why) when not."""
    if key is None:
        print("drwatch report verify: --key (the Ed25519 public key, PEM) is required",
              file=sys.stderr)  # fmt: skip
        return 2
    report_file = report_path or envelope_path.removesuffix(SUFFIX)
    try:
        print("verified: " + verify(Path(envelope_path), Path(report_file), Path(key)))
    except SigningError as exc:
        print(f"NOT verified: {exc}")
        return 1
    return 0
