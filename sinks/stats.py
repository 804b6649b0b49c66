"""Counts of what the sinks did, for the log summary and Prometheus.

Plain counters keyed by (metric, labels) so tests and the summary read them
directly; `StatsCollector` exposes the same numbers to prometheus_client under
`segmenter_sink_*` names (the product contract (section 7): sink deliveries and failures, dead letters).
"""
from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

METRICS = {
    "changes": ("segmenter_sink_changes", "Change events read by the sinks, by outcome", ("outcome",)),
    "deliveries": ("segmenter_sink_deliveries", "Actions carried out, by destination and outcome",
                   ("destination", "outcome")),
    "retries": ("segmenter_sink_retries", "Actions retried after a failure, by destination", ("destination",)),
    "dead_letters": ("segmenter_sink_dead_letters", "Actions sent to the sink dead-letter topic, by destination",
                     ("destination",)),
}


DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SinkStats:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
        # destination -> (count per bucket, the last one past the largest bound; sum of seconds)
        self.delivery: dict[str, tuple[list[int], list[float]]] = {}
        self.lag: Callable[[], int | None] = lambda: None  # input messages not yet read, when known

    def took(self, destination: str, seconds: float, amount: int = 1) -> None:
        """`amount` actions of `destination` were done (or dead-lettered) `seconds` after they were started."""
        buckets, total = self.delivery.setdefault(destination, ([0] * (len(DELIVERY_BUCKETS) + 1), [0.0]))
        buckets[bisect.bisect_left(DELIVERY_BUCKETS, seconds)] += amount
        total[0] += seconds * amount

    def add(self, metric: str, *labels: str, amount: int = 1) -> None:
        self.counts[(metric, labels)] += amount

    def get(self, metric: str, *labels: str) -> int:
        """One counter; with fewer labels than the metric has, the sum over the rest."""
        return sum(n for (name, have), n in self.counts.items() if name == metric and have[: len(labels)] == labels)

    def summary(self) -> str:
        parts = [f"{name}{'[' + ','.join(labels) + ']' if labels else ''}={count}"
                 for (name, labels), count in sorted(self.counts.items())]
        return " ".join(parts) or "nothing yet"


class StatsCollector(Collector):
    def __init__(self, stats: SinkStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        for key, (name, help_text, label_names) in METRICS.items():
            family = CounterMetricFamily(name, help_text, labels=list(label_names))
            for (metric, labels), count in sorted(self.stats.counts.items()):
                if metric == key:
                    family.add_metric(list(labels), count)
            yield family
        histogram = HistogramMetricFamily("segmenter_sink_delivery_seconds",
                                          "Time to carry out an action, retries included, by destination",
                                          labels=["destination"])
        for destination, (buckets, total) in sorted(self.stats.delivery.items()):
            cumulative, running = [], 0
            for bound, count in zip([*map(str, DELIVERY_BUCKETS), "+Inf"], buckets):
                running += count
                cumulative.append((bound, running))
            histogram.add_metric([destination], cumulative, total[0])
        yield histogram
        try:
            lag = self.stats.lag()
        except Exception:  # noqa: BLE001 - a consumer stopping or rebalancing: no reading this time
            lag = None
        if lag is not None:
            gauge = GaugeMetricFamily("segmenter_sink_consumer_lag_messages",
                                      "Change events not yet read by the sinks (high watermark minus position)")
            gauge.add_metric([], lag)
            yield gauge
