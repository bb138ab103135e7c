"""The report's pictures, inline SVG (no script, no fetch): each scenario's RTO per drill
against its objective, and its RPO exposure over the period against its objective, so a reader
sees at a glance what the tables say."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Iterator
from typing import Any

from core.durations import format_duration
from exporter.runtime.exposure_record import ExposureSample

WIDTH, HEIGHT, PAD = 640, 150, 30
BUCKETS = 160  # points of an exposure line, whatever the period's length


class ExposureSeries:
    """The worst exposure of each target/scenario per slice of the period, gathered while the
    exposure record streams by (never held whole)."""

    def __init__(self, since: float, until: float, buckets: int = BUCKETS) -> None:
        self.since, self.span, self.buckets = since, max(60.0, until - since), buckets
        self.points: dict[str, dict[int, float]] = {}  # key -> bucket -> worst (inf: unknown)

    def watch(self, samples: Iterable[ExposureSample]) -> Iterator[ExposureSample]:
        for sample in samples:
            bucket = min(self.buckets - 1, int((sample.t - self.since) / self.span * self.buckets))
            for key, (exposure, _) in sample.x.items():
                value = math.inf if exposure is None else exposure
                slot = self.points.setdefault(key, {})
                slot[bucket] = max(value, slot.get(bucket, 0.0))
            yield sample

    def of(self, key: str) -> list[list[float]]:
        """[bucket, worst] pairs, JSON-safe (an unknown minute is -1)."""
        return [
            [b, -1.0 if math.isinf(v) else v] for b, v in sorted(self.points.get(key, {}).items())
        ]


def _svg(title: str, body: list[str]) -> str:
    return (
        f'<svg role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{html.escape(title)}</title>'
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#f6f8fa"/>{"".join(body)}</svg>'
    )


def _objective_line(y: float, label: str) -> str:
    return (
        f'<line class="objective" x1="{PAD}" x2="{WIDTH - 5}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="#cf222e" stroke-dasharray="4 3"/><text x="{PAD + 2}" y="{y - 3:.1f}" '
        f'font-size="10" fill="#cf222e">{html.escape(label)}</text>'
    )


def rto_chart(scenario: str, records: list[dict[str, Any]], objective: float | None) -> str:
    """A bar per drill (its time; passed green, failed red, deferred grey), the RTO dashed."""
    judged = [r for r in records if r["outcome"] != "deferred"]
    top = max([r["duration_seconds"] for r in judged] + [objective or 0.0, 1.0]) * 1.1
    plot_h, step = HEIGHT - 2 * PAD, (WIDTH - PAD - 10) / max(1, len(judged))
    colours = {"passed": "#1a7f37", "failed": "#cf222e"}
    body = []
    for i, r in enumerate(judged):
        h = r["duration_seconds"] / top * plot_h
        body.append(
            f'<rect class="drill {r["outcome"]}" x="{PAD + i * step + 1:.1f}" '
            f'y="{HEIGHT - PAD - h:.1f}" width="{max(1.0, step - 2):.1f}" height="{h:.1f}" '
            f'fill="{colours[r["outcome"]]}"><title>{html.escape(r["started_at"])}: '
            f"{html.escape(format_duration(r['duration_seconds']))}</title></rect>"
        )
    if objective is not None:
        y = HEIGHT - PAD - objective / top * plot_h
        body.append(_objective_line(y, f"RTO {format_duration(objective)}"))
    return _svg(f"{scenario}: time to restore per drill", body)


def exposure_chart(
    scenario: str, points: list[list[float]], objective: float | None, buckets: int = BUCKETS
) -> str:
    """The worst exposure per slice of the period (unknown minutes marked at the top), the
    RPO dashed."""
    known = [v for _, v in points if v >= 0]
    top = max([*known, objective or 0.0, 1.0]) * 1.1
    plot_h, step = HEIGHT - 2 * PAD, (WIDTH - PAD - 10) / buckets
    body: list[str] = []
    run: list[str] = []
    for bucket, value in points:
        x = PAD + bucket * step
        if value < 0:  # not measured: a grey mark at the top, and the line breaks
            width = max(1.0, step)
            body.append(f'<rect class="unknown" x="{x:.1f}" y="{PAD - 6}" width="{width:.1f}" '
                        'height="4" fill="#6e7781"/>')  # fmt: skip
            run = _flush(body, run)
            continue
        run.append(f"{x:.1f},{HEIGHT - PAD - value / top * plot_h:.1f}")
    _flush(body, run)
    if objective is not None:
        body.append(_objective_line(HEIGHT - PAD - objective / top * plot_h,
                                    f"RPO {format_duration(objective)}"))  # fmt: skip
    return _svg(f"{scenario}: data at risk over the period", body)


def _flush(body: list[str], run: list[str]) -> list[str]:
    if run:
        body.append(f'<polyline class="exposure" fill="none" stroke="#0969da" '
                    f'points="{" ".join(run)}"/>')  # fmt: skip
    return []
