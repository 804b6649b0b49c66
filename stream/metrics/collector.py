"""Worker metrics read at scrape time from the worker's own bookkeeping.

Counting events and dead letters already happens in `BatchStats`; sizes come from
`LocalCounts`; timers and consumer positions from their owners. Reading them when
Prometheus asks keeps the hot path free of metric calls.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.evaluate.events import REASON_CODES
from stream.kafka import faustfixes
from stream.metrics.lag import consumer_lag

if TYPE_CHECKING:
    from stream.kafka.app import SegmenterApp


class WorkerCollector(Collector):
    def __init__(self, worker: SegmenterApp) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        worker = self.worker
        events = CounterMetricFamily("segmenter_events", "Input messages by topic and outcome "
                                     "(forwarded ones are counted again where they land)", labels=("topic", "outcome"))
        for (topic, outcome), count in sorted(worker.stats.by_topic.items()):
            events.add_metric((topic, outcome), count)
        yield events
        dead = CounterMetricFamily("segmenter_dead_letters", "Input messages sent to the dead-letter topic, "
                                   "by reason", labels=("reason",))
        for reason in REASON_CODES:
            dead.add_metric((reason,), worker.stats.by_reason.get(reason, 0))
        yield dead
        counts = worker.metrics.counts
        members = GaugeMetricFamily("segmenter_segment_members", "Segment members on this worker's partitions "
                                    "(the sum over workers is the segment size)", labels=("segment",))
        for segment, size in counts.sizes(sorted(worker.engine.definitions.segments)).items():
            members.add_metric((segment,), size)
        yield members
        yield GaugeMetricFamily("segmenter_customers", "Customers on this worker's partitions",
                                value=counts.customers)
        yield GaugeMetricFamily("segmenter_timers_pending", "Time-based flips scheduled on this worker",
                                value=len(worker.timers))
        lag = GaugeMetricFamily("segmenter_consumer_lag_messages", "Messages not read yet on this worker's "
                                "assigned partitions", labels=("topic",))
        for topic, behind in sorted(self._lag().items()):
            lag.add_metric((topic,), behind)
        yield lag
        info = GaugeMetricFamily("segmenter_definition_info", "The definition version in use", labels=("version",))
        info.add_metric((worker.engine.definitions.version,), 1)
        yield info
        yield GaugeMetricFamily("segmenter_worker_partitions", "Partitions assigned to this worker",
                                value=len(self._partitions()))

    def _lag(self) -> dict[str, int]:
        settings = self.worker.settings
        try:
            return consumer_lag(self.worker.app.consumer, [*settings.topics, settings.repartition_topic])
        except Exception:  # noqa: BLE001 - consumer not started yet
            return {}

    def _partitions(self) -> set[int]:
        try:
            return faustfixes.held_partitions(self.worker.app, self.worker.settings.repartition_topic)
        except Exception:  # noqa: BLE001 - no assignment yet
            return set()
