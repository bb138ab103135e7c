"""/runbook: docs/runbook.md of the drwatch running, as one self-contained HTML page (no script,
no fetch), so the status page's runbook links work offline and match the version in use. The
runbook is drwatch's own text (packaged with it), rendered once."""

from __future__ import annotations

import functools
import html
from pathlib import Path

from markdown_it import MarkdownIt

from exporter import __version__

RUNBOOK = Path(__file__).with_name("runbook.md")
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}code,pre{background:#f6f8fa}pre{padding:.5rem;overflow-x:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.2rem .5rem}"
)


@functools.cache
def runbook_page() -> bytes:
    """The rendered runbook (its `<a id>` anchors kept: the status page and alerts link them)."""
    source = RUNBOOK.read_text(encoding="utf-8")
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(source)
    title = html.escape(f"drwatch {__version__} runbook")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f'<p><a href="/">status page</a> · {title}</p>{body}</body></html>'
    ).encode()
