"""`segmenter sinks`: the consume loop over the changes topic.

One round: fetch up to `--sink-batch` change events, carry out their actions
(`ChangeProcessor`), publish what could not be done to the sink dead-letter topic
and wait for Kafka to take it, and only then commit the input offsets. A crash at any
point redelivers the round, which the sinks' idempotence makes harmless.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from sinks import kafka
from sinks.deadletter import publish
from sinks.processor import ChangeProcessor
from sinks.settings import SinkSettings
from sinks.stats import SinkStats
from stream.settings import Settings

log = logging.getLogger("segmenter.sinks")


class SinksRunner:
    def __init__(self, settings: Settings, sink_settings: SinkSettings, processor: ChangeProcessor,
                 stats: SinkStats, summary_every: float = 30.0) -> None:
        self.settings = settings
        self.sink_settings = sink_settings
        self.processor = processor
        self.stats = stats
        self.summary_every = summary_every
        self.consumer: AIOKafkaConsumer | None = None

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        names = [self.settings.changes_topic, self.sink_settings.sink_dlq_topic]
        await kafka.ensure_topics(self.settings, names)
        consumer = kafka.consumer(self.settings, self.sink_settings.sinks_group, self.settings.changes_topic,
                                  max_records=self.sink_settings.sink_batch,
                                  round_limit=self.sink_settings.retry_policy().round_limit())
        self.consumer = consumer
        self.stats.lag = lambda: _lag(consumer)
        producer = kafka.producer(self.settings)
        await producer.start()
        try:
            await consumer.start()
            if ready is not None:
                ready()
            last_summary = time.monotonic()
            while not stop.is_set():
                fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=500, max_records=self.sink_settings.sink_batch))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not fetch.done():
                    fetch.cancel()
                    break
                batch = fetch.result()
                if batch:
                    await self.round(consumer, producer, batch)
                if time.monotonic() - last_summary >= self.summary_every:
                    log.info("sinks: %s", self.stats.summary())
                    last_summary = time.monotonic()
        finally:
            log.info("sinks stopping: %s", self.stats.summary())
            await consumer.stop()
            await producer.stop()

    async def round(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                    batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        dead = await self.processor.process(record.value for records in batch.values() for record in records)
        if dead:
            await publish(producer, self.sink_settings.sink_dlq_topic, dead)
            first = dead[0]
            log.warning("%d action(s) dead-lettered to %s; the first: %s for %s, %s", len(dead),
                        self.sink_settings.sink_dlq_topic, first.delivery.action.destination,
                        first.delivery.change.delivery_id, first.error)
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved to another member meanwhile; it redelivers, idempotently.
            log.warning("commit skipped after a rebalance: %s", exc)


def _lag(consumer: AIOKafkaConsumer) -> int | None:
    """Messages between the position and the high watermark, over assigned partitions;
    None until every assigned partition has been fetched once."""
    subscription = consumer._subscription.subscription  # synchronous: a scrape cannot await
    if subscription is None or subscription.assignment is None:
        return None
    total = 0
    for tp in consumer.assignment():
        state = subscription.assignment.state_value(tp)
        high = consumer.highwater(tp)
        if high is None or state is None or not state.has_valid_position:
            return None
        total += max(0, high - state.position)
    return total
