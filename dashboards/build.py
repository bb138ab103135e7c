"""Writes the dashboards' JSON: `python -m dashboards.build` (`make dashboards`).

The JSON under dashboards/grafana/ is committed; a test fails when it differs from what this
produces.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import drwatch, postgres, recovery

OUT = Path(__file__).resolve().parent / "grafana"
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "drwatch-recovery.json": recovery.build,
    "drwatch-postgres.json": postgres.build,
    "drwatch-self.json": drwatch.build,
}


def render(build: Callable[[], Dashboard]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    # Grafana wants a unique id per panel; assign them in reading order.
    for panel_id, panel in enumerate(doc.get("panels", []), start=1):
        panel["id"] = panel_id
    return doc


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(text(render(build)))
        print(f"wrote {OUT / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
