"""Debian's prometheus and alertmanager beside drwatch, with the shipped rules and the example
routing: for `make run-alerting` and the end-to-end paging test."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.pgcluster import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
EXAMPLE_RECEIVER = "http://127.0.0.1:9099"  # what alerts/alertmanager.example.yml points at


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as resp:  # loopback only
        return bool(resp.status == 200)


@dataclass
class Alerting:
    prometheus_port: int
    alertmanager_port: int
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def alertmanager_config(receiver_url: str | None, fast: bool) -> dict[str, Any]:
    """The shipped example; `receiver_url` replaces its placeholder receiver, `fast` shortens
    its waits (the routing, matchers and inhibitions stay as shipped)."""
    config: dict[str, Any] = yaml.safe_load((ALERTS / "alertmanager.example.yml").read_text())
    if fast:
        config["route"].update(group_wait="2s", group_interval="5s")
        for route in config["route"]["routes"]:
            route["group_interval"] = "5s"
    if receiver_url:
        for receiver in config["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = hook["url"].replace(EXAMPLE_RECEIVER, receiver_url)
    return config


def start(
    work: Path, drwatch_port: int, receiver_url: str | None = None, fast: bool = True
) -> Alerting:
    """Starts alertmanager and prometheus (scraping drwatch every 2 s) in `work`."""
    alerting = Alerting(free_port(), free_port())
    (work / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(receiver_url, fast)))
    prometheus = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [
            str(p) for p in sorted(ALERTS.glob("*.yml")) if p.name != "alertmanager.example.yml"
        ],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{alerting.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": "drwatch", "static_configs": [{"targets": [f"127.0.0.1:{drwatch_port}"]}]}
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(prometheus))
    alerting.processes.append(
        Process(
            [
                "prometheus-alertmanager",
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{alerting.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            work / "alertmanager.log",
        )
    )
    alerting.processes.append(
        Process(
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{alerting.prometheus_port}",
            ],
            work / "prometheus.log",
        )
    )
    try:
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{alerting.prometheus_port}/-/ready"),
            60,
            what="prometheus",
        )
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{alerting.alertmanager_port}/-/ready"),
            60,
            what="alertmanager",
        )
    except TimeoutError:
        alerting.stop()
        raise
    return alerting
