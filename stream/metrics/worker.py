"""Metrics the worker updates as it publishes changes.

`Processor.on_change` reports each change when it is queued; the observations wait
until the round's producer flush returns (`published`), so latency is measured to the
moment the change was actually handed to Kafka, not to when it was computed.
"""
from __future__ import annotations

import time

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram

from rules import Change
from stream.metrics.counts import LocalCounts

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GC_PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
TIMER_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # `*_created` series only clutter a worker's page
        self.registry = CollectorRegistry(auto_describe=True)
        self.counts = LocalCounts()
        self.changes = Counter("segmenter_changes", "Membership changes published, by segment and enter/exit",
                               ("segment", "change"), registry=self.registry)
        self.latency = Histogram(
            "segmenter_change_latency_seconds",
            "Event to change: publish wall time minus the Kafka timestamp of the input message "
            "(changes caused by events)", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.timer_lag = Histogram(
            "segmenter_timer_lag_seconds",
            "How late a time-based flip fired by the timer was published after its due instant",
            buckets=TIMER_LAG_BUCKETS, registry=self.registry)
        self.gc_pauses = Histogram(
            "segmenter_gc_pause_seconds",
            "Pauses of Python's cyclic garbage collector, by generation: every event waits them out",
            ("generation",), buckets=GC_PAUSE_BUCKETS, registry=self.registry)
        self._gc_children = [self.gc_pauses.labels(str(generation)) for generation in range(3)]
        self._unpublished: list[tuple[Change, int]] = []
        self._by_label: dict[tuple[str, str], Counter] = {}  # labels() takes a lock and builds a key per call

    def changed(self, change: Change, appended_ms: int) -> None:
        """A change was queued; `appended_ms` is its input message's Kafka timestamp (0 for
        flips the timer fired)."""
        self.counts.changed(change)
        labels = (change.segment, change.change)
        child = self._by_label.get(labels)
        if child is None:
            child = self._by_label[labels] = self.changes.labels(*labels)
        child.inc()
        self._unpublished.append((change, appended_ms))

    def gc_paused(self, generation: int, seconds: float) -> None:
        self._gc_children[generation].observe(seconds)

    def sent(self) -> list[tuple[Change, int]]:
        """The changes queued since the last call: the round's, handed to the producer."""
        sent, self._unpublished = self._unpublished, []
        return sent

    def published(self, sent: list[tuple[Change, int]]) -> None:
        """Kafka acknowledged a round's output: observe its changes' latency and lag."""
        if not sent:
            return
        now_ms = time.time() * 1000
        for change, appended_ms in sent:
            if appended_ms > 0 and change.cause != "timer":
                self.latency.observe(max(0.0, now_ms - appended_ms) / 1000)
            elif appended_ms == 0 and change.cause == "timer":
                self.timer_lag.observe(max(0.0, now_ms - change.at) / 1000)
