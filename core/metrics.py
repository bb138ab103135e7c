"""Metric declarations: each metric is declared once, as a `MetricSpec`, and every sample is made
through its declaration, so a sample can only carry the labels its metric declares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class LabelMismatch(ValueError):
    """A sample's labels differ from its metric's declaration: a bug in the code adding it."""


@dataclass(frozen=True)
class MetricSpec:
    """The one declaration of a metric: the collector, docs and tests read it from here.

    For check metrics, `labels` are those beyond `target`, which every check metric carries.
    """

    name: str
    type: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...] = ()

    def sample(self, value: float, /, **labels: str) -> Sample:
        """A sample of this metric; LabelMismatch unless `labels` are exactly the declared ones."""
        if labels.keys() != set(self.labels):
            raise LabelMismatch(
                f"{self.name}: labels {sorted(labels)} do not match the declared "
                f"{sorted(self.labels)}"
            )
        return Sample(self, float(value), tuple(sorted(labels.items())))

    def family(self, leading: tuple[str, ...] = ()) -> GaugeMetricFamily | CounterMetricFamily:
        """An empty family of this metric, with `leading` labels (`target`) before the declared."""
        labels = (*leading, *self.labels)
        if self.type == "counter":
            return CounterMetricFamily(self.name, self.help, labels=labels)
        return GaugeMetricFamily(self.name, self.help, labels=labels)


@dataclass(frozen=True)
class Sample:
    spec: MetricSpec
    value: float
    labels: tuple[tuple[str, str], ...] = ()  # (name, value), sorted by name

    @property
    def name(self) -> str:
        return self.spec.name

    def label_values(self) -> list[str]:
        """The label values in the declaration's order."""
        by_name = dict(self.labels)
        return [by_name[label] for label in self.spec.labels]


class Families:
    """The families of one scrape, fresh each time, filled only through their declarations:
    a metric not declared here, or labels its declaration lacks, raise (in tests, not scrapes)."""

    def __init__(self, specs: Iterable[MetricSpec], leading: tuple[str, ...] = ()) -> None:
        self._leading = leading
        self._specs: dict[str, MetricSpec] = {}
        self._families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for spec in specs:
            self._specs.setdefault(spec.name, spec)
            self._families.setdefault(spec.name, spec.family(leading))

    def add(self, spec: MetricSpec, value: float, /, **labels: str) -> None:
        """One sample of `spec` (a metric without leading labels)."""
        self.add_sample(spec.sample(value, **labels))

    def add_sample(self, sample: Sample, *leading: str) -> None:
        """`sample`, after the values of the leading labels (`target`)."""
        if len(leading) != len(self._leading):
            raise LabelMismatch(f"{sample.name}: expected values for {self._leading}")
        if self._specs.get(sample.name) != sample.spec:
            raise LabelMismatch(f"{sample.name}: not declared among this scrape's metrics")
        family = self._families[sample.name]
        family.add_metric([*leading, *sample.label_values()], sample.value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())

    def with_samples(self) -> Iterator[Metric]:
        """Only the families that got a sample: a metric nothing measured is absent."""
        return (f for f in self._families.values() if f.samples)


def gauge(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", help, labels)


def counter(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", help, labels)
