"""Counts of what the sinks did, for the log summary and Prometheus.

Plain counters keyed by (metric, labels) so tests and the summary read them
directly; `StatsCollector` exposes the same numbers to prometheus_client under
`segmenter_sink_*` names (the product contract (section 7): sink deliveries and failures, dead letters).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

METRICS = {
    "changes": ("segmenter_sink_changes", "Change events read by the sinks, by outcome", ("outcome",)),
    "deliveries": ("segmenter_sink_deliveries", "Actions carried out, by destination and outcome",
                   ("destination", "outcome")),
    "retries": ("segmenter_sink_retries", "Actions retried after a failure, by destination", ("destination",)),
    "dead_letters": ("segmenter_sink_dead_letters", "Actions sent to the sink dead-letter topic, by destination",
                     ("destination",)),
}


class SinkStats:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, tuple[str, ...]]] = Counter()

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

    def collect(self) -> Iterator[CounterMetricFamily]:
        for key, (name, help_text, label_names) in METRICS.items():
            family = CounterMetricFamily(name, help_text, labels=list(label_names))
            for (metric, labels), count in sorted(self.stats.counts.items()):
                if metric == key:
                    family.add_metric(list(labels), count)
            yield family
