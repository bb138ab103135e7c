"""The Prometheus text format (0.0.4), written by hand for drwatch's own families so that each
job's lines can be rendered once, when its result arrives, and a scrape only concatenates.
The same output prometheus_client's generate_latest gives (tests compare them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from prometheus_client import utils

from core.metrics import MetricSpec

_go_float = cast(Callable[[float], str], utils.floatToGoString)  # 1e-07, +Inf, as Go writes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def header(spec: MetricSpec) -> str:
    return f"# HELP {spec.name} {_escape_help(spec.help)}\n# TYPE {spec.name} {spec.type}\n"


def sample_line(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    """One sample; labels in name order, as prometheus_client writes them."""
    pairs = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labels))
    return f"{name}{{{pairs}}} {_go_float(value)}\n" if pairs else f"{name} {_go_float(value)}\n"


class Lines:
    """The sample lines of some families, by family name, in the order samples were added."""

    def __init__(self) -> None:
        self.by_family: dict[str, list[str]] = {}

    def add(self, spec: MetricSpec, value: float, labels: Iterable[tuple[str, str]]) -> None:
        self.by_family.setdefault(spec.name, []).append(sample_line(spec.name, labels, value))

    def add_line(self, name: str, line: str) -> None:
        """A sample line rendered earlier (by sample_line), in family `name`."""
        self.by_family.setdefault(name, []).append(line)

    def joined(self) -> dict[str, str]:
        return {name: "".join(lines) for name, lines in self.by_family.items()}


def page(specs: Iterable[MetricSpec], parts: Iterable[dict[str, str]], always: bool) -> str:
    """Every family of `specs` once (its header, then its lines from every part, in order);
    a family without a line only if `always`."""
    bodies: dict[str, list[str]] = {}
    for part in parts:
        for name, text in part.items():
            bodies.setdefault(name, []).append(text)
    out: list[str] = []
    for spec in specs:
        body = bodies.get(spec.name, [])
        if body or always:
            out.append(header(spec))
            out.extend(body)
    return "".join(out)
