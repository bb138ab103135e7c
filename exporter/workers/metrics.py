"""The worker processes on /metrics: how many targets each runs, how often each was restarted."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from core.metrics import Families, counter, gauge
from exporter.workers.pool import WorkerPool

WORKER_TARGETS = gauge(
    "drwatch_worker_targets",
    "How many targets each worker process runs the checks of (--workers; absent with 0).",
    "worker",
)
WORKER_RESTARTS_TOTAL = counter(
    "drwatch_worker_restarts_total",
    "Worker processes that died and were started again: each time, the checks of its targets "
    "were down (reason internal) until its successor's first runs.",
    "worker",
)

METRICS = (WORKER_TARGETS, WORKER_RESTARTS_TOTAL)


class WorkerCollector(Collector):
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def describe(self) -> Iterator[Metric]:
        yield from Families(METRICS)

    def collect(self) -> Iterator[Metric]:
        families = Families(METRICS)
        targets = self.pool.assignment()
        for worker in range(self.pool.count()):
            label = str(worker)
            families.add(
                WORKER_TARGETS, sum(1 for w in targets.values() if w == worker), worker=label
            )
            families.add(WORKER_RESTARTS_TOTAL, self.pool.restarts(worker), worker=label)
        yield from families
