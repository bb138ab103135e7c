"""The Grafana dashboards: generated from code, structurally what Grafana imports, and every panel
query returns data from Debian's Prometheus scraping a live drwatch on the sandbox estate."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import DASHBOARDS, OUT, render, text
from docs.metricsdoc import all_metrics
from sandbox import alerting
from sandbox.estate import Estate
from sandbox.pgcluster import wait_until
from tests.daemon import DaemonProcess, http_get

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aragora.yml"
PANEL_TYPES = {"row", "stat", "timeseries", "table", "state-timeline"}
# Series a dashboard may use that drwatch does not declare: Prometheus' own.
PROMETHEUS_SERIES = {"ALERTS", "scrape_duration_seconds", "scrape_samples_scraped"}


def _committed() -> dict[str, dict[str, Any]]:
    docs = {name: json.loads((OUT / name).read_text()) for name in DASHBOARDS}
    assert len(docs) == 3, "the dashboards were not found"
    return docs


def _panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in doc["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row holds its panels
    assert len(out) >= 10, f"{doc['title']}: too few panels to be the dashboard"
    return out


def _queries(doc: dict[str, Any]) -> list[tuple[str, str]]:
    queries = [
        (panel["title"], target["expr"])
        for panel in _panels(doc)
        for target in panel.get("targets", [])
    ]
    assert len(queries) >= 10, f"{doc['title']}: too few queries to be the dashboard"
    return queries


def test_committed_json_is_what_the_code_generates() -> None:
    for name, build in DASHBOARDS.items():
        assert (OUT / name).read_text() == text(render(build)), (
            f"dashboards/grafana/{name} is stale: run `make dashboards`"
        )


def test_uids_and_panel_ids_are_unique() -> None:
    docs = _committed()
    uids = [doc["uid"] for doc in docs.values()]
    assert len(uids) == len(set(uids)) == len(DASHBOARDS)
    for name, doc in docs.items():
        ids = [panel["id"] for panel in _panels(doc)]
        assert len(ids) == len(set(ids)), name
        assert all(isinstance(i, int) and i > 0 for i in ids), name


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    for name, doc in _committed().items():
        cells: dict[tuple[int, int], str] = {}
        for panel in _panels(doc):
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    other = cells.setdefault((x, y), panel["title"])
                    assert other == panel["title"], f"{name}: {panel['title']!r} overlaps {other!r}"


def test_grafana_schema_essentials() -> None:
    for name, doc in _committed().items():
        assert doc["schemaVersion"] >= 39, name  # Grafana 11 and later
        assert re.fullmatch(r"[a-z0-9-]{1,40}", doc["uid"]), name
        assert doc["title"].startswith("drwatch / ")
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        target = variables["target"]
        assert target["type"] == "query" and target["multi"] and target["includeAll"]
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for panel in _panels(doc):
            assert panel["type"] in PANEL_TYPES, panel["type"]
            if panel["type"] == "row":
                continue
            assert panel["title"] and panel["description"], panel
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]
            for target_query in panel["targets"]:
                assert target_query["datasource"]["uid"] == "${datasource}"


def test_every_drwatch_query_filters_on_the_target_variable() -> None:
    for doc in _committed().values():
        for title, expr in _queries(doc):
            if re.search(r"drwatch_(?!build_info|config_last_reload)|\b(slo|drwatch):", expr):
                assert 'target=~"$target"' in expr, title


def _recorded() -> set[str]:
    """The series the shipped rules record (alerts/slo.yml)."""
    return {
        str(rule["record"])
        for path in (ROOT / "alerts").glob("*.yml")
        for group in (yaml.safe_load(path.read_text()).get("groups") or [])
        for rule in group["rules"]
        if "record" in rule
    }


def test_every_metric_referenced_is_declared() -> None:
    declared, recorded = {spec.name for spec in all_metrics()}, _recorded()
    for doc in _committed().values():
        for title, expr in _queries(doc):
            for name in re.findall(r"\b((?:slo|drwatch):[a-z0-9_:]+)", expr):
                assert name in recorded, f"{title}: {name} is not recorded by the shipped rules"
            expr = re.sub(r"\b(?:slo|drwatch):[a-z0-9_:]+", "", expr)
            for name in re.findall(r"\b(drwatch_[a-z0-9_]+)", expr):
                assert name in declared, f"{title}: {name} is not a drwatch metric"
            for name in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*[{*]", expr):
                assert name.startswith("drwatch_") or name in PROMETHEUS_SERIES, (title, name)


def test_the_dashboards_cover_what_on_call_needs() -> None:
    docs = _committed()
    every = " ".join(expr for doc in docs.values() for _, expr in _queries(doc))
    for metric in (
        "drwatch_rpo_exposure_seconds",
        "drwatch_rpo_objective_seconds",
        "drwatch_backup_newest_verified",
        "drwatch_wal_archive_missing_segments",
        "drwatch_replica_copy_lag_seconds",
        "drwatch_redis_last_save_timestamp_seconds",
        "drwatch_pg_connections",
        "drwatch_pg_connection_utilization_ratio",
        "drwatch_pg_archiver_failed_total",
        "drwatch_table_gaps",
        "drwatch_table_orphan_rows",
        "drwatch_table_group_rows",
        "drwatch_check_duration_seconds",
        "drwatch_check_errors_total",
        "drwatch_remediation_actions_total",
        "ALERTS",
    ):
        assert metric in every, metric


def test_provisioning_files() -> None:
    datasources = yaml.safe_load(
        (ROOT / "dashboards/provisioning/datasources/drwatch.yml").read_text()
    )
    assert datasources["apiVersion"] == 1
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load(
        (ROOT / "dashboards/provisioning/dashboards/drwatch.yml").read_text()
    )
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# --- every query against a live drwatch ---------------------------------------------------------


def substitute(expr: str, target: str) -> str:
    """What Grafana sends for one selected target (a name with no regex metacharacters)."""
    assert re.fullmatch(r"[A-Za-z0-9_-]+", target)
    return (
        expr.replace("$target", target)
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, DaemonProcess]]:
    """The sandbox estate, drwatch on examples/aragora.yml, Prometheus scraping it every 2 s."""
    work = tmp_path_factory.mktemp("dashboards")
    estate = Estate().start()
    daemon: DaemonProcess | None = None
    prometheus: alerting.Alerting | None = None
    with pytest.MonkeyPatch.context() as env:
        try:
            for key, value in estate.env().items():
                env.setenv(key, value)
            daemon = DaemonProcess(EXAMPLE, work)
            wait_until(lambda: daemon.get("/-/ready")[0] == 200, 120, what="drwatch ready")
            prometheus = alerting.start(work, daemon.port)
            yield f"http://127.0.0.1:{prometheus.prometheus_port}", daemon
        finally:
            if prometheus is not None:
                prometheus.stop()
            if daemon is not None:
                daemon.stop()
            estate.stop()


def run_query(prometheus: str, expr: str) -> tuple[str, int]:
    """("", series) on success, (error, 0) on failure."""
    status, body = http_get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    doc = json.loads(body)
    if status != 200 or doc.get("status") != "success":
        return f"{doc.get('errorType')}: {doc.get('error')}", 0
    return "", len(doc["data"]["result"])


def test_every_panel_query_returns_data(live: tuple[str, DaemonProcess]) -> None:
    prometheus, daemon = live
    queries = [
        (f"{doc['title']} / {title}", substitute(expr, "aragora-prod"))
        for doc in _committed().values()
        for title, expr in _queries(doc)
    ]
    assert len(queries) > 40
    failing: dict[str, str] = {}

    def all_answer() -> bool:
        failing.clear()
        for where, expr in queries:
            error, series = run_query(prometheus, expr)
            if error:
                failing[where] = f"{expr}: {error}"
            elif series == 0:
                failing[where] = f"{expr}: no series"
        return not failing

    try:
        wait_until(all_answer, 120, interval=2, what="every panel query answers")
    except TimeoutError:
        pytest.fail(
            "panel queries without data:\n"
            + "\n".join(f"  {w}: {e}" for w, e in failing.items())
            + "\n"
            + daemon.log()[-3000:]
        )
    # The target variable's own query lists the target.
    error, series = run_query(prometheus, "group by (target) (drwatch_check_up)")
    assert not error and series == 1
