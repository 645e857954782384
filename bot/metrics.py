"""Prometheus metrics, one set per bot so that tests can build several bots in one process.

The counts are kept here in plain Python — the event loop is their only writer, so there is nothing to
lock — and :meth:`Metrics.render` hands them to prometheus_client only when ``/metrics`` is asked. The
library (with the ``http.server``, ``urllib.request``, ``wsgiref`` and ``gzip`` its exposition imports)
costs ~1.2 MB of memory for the life of the process, and a bot without its web part never shows metrics.
The text served is prometheus_client's own, as before: ``<name>_total`` and ``<name>_created`` for
counters, ``_bucket``/``_count``/``_sum``/``_created`` for histograms.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

_INF = float("inf")


class Child:
    """One label combination of a metric: a counter's value, or a histogram's buckets, count and sum."""

    __slots__ = ("buckets", "counts", "created", "label_values", "sum", "value")

    def __init__(self, label_values: tuple[str, ...] = (), buckets: tuple[float, ...] = ()) -> None:
        self.label_values = label_values
        self.value = 0.0
        """A counter's value; a histogram's number of observations."""
        self.sum = 0.0
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        """Observations per bucket (not cumulative), the last bucket being +Inf."""
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self.value += amount

    def observe(self, amount: float) -> None:
        self.value += 1
        self.sum += amount
        for index, bound in enumerate(self.buckets):
            if amount <= bound:
                self.counts[index] += 1
                break

    def get(self) -> float:
        return self.value

    @property
    def _value(self) -> Child:
        """prometheus_client's spelling (``child._value.get()``), for code and tests written against it."""
        return self


class Family:
    """A metric with its label names; ``labels(...)`` is its child for those values, made on first use."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float] | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.kind = "counter" if buckets is None else "histogram"
        self.buckets: tuple[float, ...] = ()
        if buckets is not None:
            bounds = sorted(float(bound) for bound in buckets)
            self.buckets = (*bounds, _INF) if not bounds or bounds[-1] != _INF else tuple(bounds)
        self.children: dict[tuple[object, ...], Child] = {}

    def labels(self, *values: object) -> Child:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes the labels {', '.join(self.labelnames)}")
            child = self.children[values] = Child(tuple(str(value) for value in values), self.buckets)
        return child

    def families(self) -> Iterator[Metric]:
        """This metric as prometheus_client's metric families (only called while rendering)."""
        from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        if self.kind == "counter":
            counter = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for child in self.children.values():
                counter.add_metric(child.label_values, child.value, created=child.created)
            yield counter
            return
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for child in self.children.values():
            values = child.label_values
            cumulative, buckets = 0, []
            for bound, count in zip(self.buckets, child.counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), float(cumulative)))  # type: ignore[no-untyped-call]
            histogram.add_metric(values, buckets, child.sum)
            histogram.add_sample(
                f"{self.name}_created", dict(zip(self.labelnames, values, strict=True)), child.created
            )
        yield histogram


class _Collector:
    """What prometheus_client's registry asks for the samples."""

    def __init__(self, metrics: Sequence[Family]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for family in self.metrics:
            yield from family.families()


class Metrics:
    def __init__(self) -> None:
        self.events = Family("copbot_events_handled", "Platform events handled", ["platform", "event"])
        self.duplicates = Family(
            "copbot_events_duplicate", "Events skipped because already handled", ["platform"]
        )
        self.commands = Family("copbot_commands", "Commands by name and outcome", ["command", "outcome"])
        self.latency = Family(
            "copbot_handler_seconds",
            "Time spent handling one event, from receipt to committed",
            ["kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.job_runs = Family(
            "copbot_scheduled_jobs", "Scheduled jobs run, by target and outcome", ["target", "outcome"]
        )
        self.all = (self.events, self.duplicates, self.commands, self.latency, self.job_runs)

    def child(self, metric: Family, *labels: object) -> Child:
        """``metric.labels(*labels)``: one dictionary lookup, cheap enough for the hot path."""
        return metric.labels(*labels)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format (prometheus_client is imported here, on first use)."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.all))
        return generate_latest(registry)
