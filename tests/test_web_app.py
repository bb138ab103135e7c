"""The daemon's routes, called as a WSGI server calls them."""

from __future__ import annotations

import gzip
import json
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from checks.base import Observation, Status
from exporter.runtime.current import Current, ReloadState
from exporter.runtime.results import ResultStore
from exporter.runtime.runner import DeadlineRunner, Job
from exporter.web.app import WsgiApp, make_app
from exporter.web.metrics import MetricsPage
from exporter.web.page import PageCache
from tests.helpers import make_config


def _call(
    app: WsgiApp, path: str, query: str = "", **environ_more: str
) -> tuple[str, dict[str, str], str]:
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, **environ_more}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> None:
        seen.update(status=status, headers=dict(headers))

    body = b"".join(app(environ, start_response))
    if seen["headers"].get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return seen["status"], seen["headers"], body.decode()


def _app() -> tuple[WsgiApp, ResultStore, Job]:
    config = make_config([{"name": "db", "postgres": {"dsn": "postgresql://127.0.0.1:1/x"}}])
    job = Job("db", "connections", 1.0, 1.0, (), (), lambda: Observation(Status.OK, "fine"))
    store = ResultStore()
    store.configure([job.key])
    current = Current(config.config, (job,), (("db", "postgres", True),))
    metrics = MetricsPage(store, lambda: current, lambda: ReloadState(True, 0.0))
    return make_app(PageCache(lambda: metrics.render().encode()), store, lambda: current), store, job


def test_health_readiness_and_not_found() -> None:
    app, store, job = _app()
    assert _call(app, "/-/healthy")[0] == "200 OK"
    status, _, body = _call(app, "/-/ready")
    assert status.startswith("503") and "first round" in body
    store.put(DeadlineRunner().run(job))
    assert _call(app, "/-/ready")[0] == "200 OK"
    assert _call(app, "/nothing-here")[0].startswith("404")


def test_metrics_status_json_and_the_page() -> None:
    app, store, job = _app()
    store.put(DeadlineRunner().run(job))
    status, headers, text = _call(app, "/metrics")
    assert status == "200 OK" and headers["Content-Type"].startswith("text/plain")
    assert 'drwatch_check_up{check="connections",target="db"} 1.0' in text
    assert "Content-Encoding" not in headers
    _, headers, unzipped = _call(app, "/metrics", HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert headers["Content-Encoding"] == "gzip" and unzipped == text  # as Prometheus asks
    status, headers, body = _call(app, "/status.json")
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "OK" and doc["checks"][0]["summary"] == "fine"
    _, headers, page = _call(app, "/", "refresh=30")
    assert headers["Content-Type"].startswith("text/html")
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "http-equiv" not in _call(app, "/", "refresh=soon")[2]


def test_a_hostile_refresh_is_ignored_not_an_error() -> None:
    app, _, _ = _app()
    for query in ("refresh=%C2%B2", "refresh=" + "9" * 5000, "refresh=-1", "refresh=0"):
        status, _, page = _call(app, "/", query)
        assert status == "200 OK" and "http-equiv" not in page, query


def test_a_bug_in_a_route_is_a_logged_500_never_a_raw_traceback(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config([{"name": "db", "postgres": {"dsn": "postgresql://127.0.0.1:1/x"}}])
    current = Current(config.config, (), ())

    def broken(environ: object, start_response: object) -> list[bytes]:
        raise RuntimeError("postgresql://app:hunter22@db/x exploded")

    app = make_app(PageCache(lambda: b""), ResultStore(), lambda: current, {"/broken": broken})
    status, _, body = _call(app, "/broken")
    assert status.startswith("500") and "hunter22" not in body
    (record,) = [r for r in caplog.records if r.name == "drwatch.http"]
    assert record.exc_info is not None  # the formatter (which redacts) renders it
    assert capsys.readouterr().err == ""
