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
        try:
            values = tuple(labels[name] for name in self.labels)
        except KeyError:
            values = ()
        if len(values) != len(labels) or len(values) != len(self.labels):
            raise LabelMismatch(
                f"{self.name}: labels {sorted(labels)} do not match the declared "
                f"{sorted(self.labels)}"
            )
        return Sample(self, float(value), values)

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
    values: tuple[str, ...] = ()  # the label values, in the declaration's order

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """(name, value) pairs, sorted by name."""
        return tuple(sorted(zip(self.spec.labels, self.values, strict=True)))


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
        declared = self._specs.get(sample.name)
        if declared is not sample.spec and declared != sample.spec:
            raise LabelMismatch(f"{sample.name}: not declared among this scrape's metrics")
        self._families[sample.name].add_metric([*leading, *sample.values], sample.value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())

    def with_samples(self) -> Iterator[Metric]:
        """Only the families that got a sample: a metric nothing measured is absent."""
        return (f for f in self._families.values() if f.samples)


def gauge(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", help, labels)


def counter(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", help, labels)
