"""`segmenter redrive`: run dead-lettered actions again.

Reads the sink dead-letter topic in its own consumer group (from the group's
committed offsets, or from the beginning), runs each action with the same retries as
`segmenter sinks`, dead-letters again what still fails (with the attempts added up),
commits, and stops once nothing new arrives for `idle` seconds. Dead letters it
writes itself are not read again in the same run: a destination still down does not
make redrive loop. Running actions again is safe: Redis writes are seq-guarded, an
email marked sent is not sent again, CSV rows are deduplicated, and webhooks carry
the same `X-Segmenter-Delivery` id.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from sinks import kafka
from rules.language.model import Definitions
from sinks.actions import actions_for
from sinks.base import Delivery
from sinks.deadletter import decode, publish
from sinks.dispatch import Dispatcher
from sinks.processor import UNRESOLVED
from sinks.settings import SinkSettings
from stream.settings import Settings

log = logging.getLogger("segmenter.sinks")


@dataclass
class RedriveReport:
    read: int = 0
    redriven: int = 0
    dead_again: int = 0
    unreadable: int = 0
    unknown_segment: int = 0  # dead letters of a segment that even these definitions lack


async def _assigned(consumer: AIOKafkaConsumer, timeout: float) -> set[TopicPartition]:
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError("no partitions of the dead-letter topic were assigned")
        await consumer.getmany(timeout_ms=100, max_records=1)  # joins the group; records are read again below
    return set(consumer.assignment())


async def redrive(settings: Settings, sink_settings: SinkSettings, dispatcher: Dispatcher | None,
                  from_beginning: bool = False, list_only: bool = False, idle: float = 3.0,
                  out: TextIO = sys.stdout, definitions: Definitions | None = None) -> RedriveReport:
    """`definitions`: what the segments of dead letters made under other definitions
    than the sinks had do now (see `sinks.processor.UNRESOLVED`); without them such
    letters are dead-lettered again. `dispatcher` may be None only with `list_only`."""
    assert dispatcher is not None or list_only
    topic = sink_settings.sink_dlq_topic
    await kafka.ensure_topics(settings, [topic])
    consumer = kafka.consumer(settings, sink_settings.redrive_group, topic, max_records=sink_settings.sink_batch,
                              round_limit=sink_settings.retry_policy().round_limit())
    producer = kafka.producer(settings)
    report = RedriveReport()
    stop_at: dict[TopicPartition, int] = {}  # first offset this run wrote, per partition
    await producer.start()
    try:
        await consumer.start()
        partitions = await _assigned(consumer, timeout=30.0)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:  # a record fetched while joining must not be skipped
            for tp in partitions:
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
        last_new = time.monotonic()
        while time.monotonic() - last_new < idle:
            batch = await consumer.getmany(timeout_ms=200, max_records=sink_settings.sink_batch)
            wanted = {tp: [r for r in records if r.offset < stop_at.get(tp, 1 << 62)] for tp, records in batch.items()}
            wanted = {tp: records for tp, records in wanted.items() if records}
            if not wanted:
                continue
            deliveries: list[Delivery] = []
            for records in wanted.values():
                for record in records:
                    report.read += 1
                    try:
                        delivery, raw = decode(record.value)
                    except ValueError as exc:
                        report.unreadable += 1
                        log.warning("%s[%d]@%d is not a sink dead letter, skipped: %s", topic, record.partition,
                                    record.offset, exc)
                        continue
                    if list_only:
                        out.write(orjson.dumps(raw).decode() + "\n")
                    elif delivery.action.kind == UNRESOLVED.kind and definitions is not None:
                        actions = actions_for(definitions, delivery.change)
                        if actions is None:
                            report.unknown_segment += 1
                            log.warning("%s: segment %r is not in these definitions either (%s); skipped",
                                        delivery.change.delivery_id, delivery.change.segment, definitions.version)
                        deliveries.extend(Delivery(delivery.change, action, delivery.attempts)
                                          for action in actions or ())
                        continue
                    deliveries.append(delivery)
            if list_only:
                last_new = time.monotonic()
                continue
            assert dispatcher is not None
            dead = await dispatcher.deliver(deliveries)
            report.redriven += len(deliveries) - len(dead)
            report.dead_again += len(dead)
            for letter in dead:
                log.warning("dead-lettered again: %s for %s: %s", letter.delivery.action.destination,
                            letter.delivery.change.delivery_id, letter.error)
            for partition, offset in await publish(producer, topic, dead) if dead else []:
                tp = TopicPartition(topic, partition)
                stop_at[tp] = min(stop_at.get(tp, offset), offset)
            await consumer.commit({tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in wanted.items()})
            last_new = time.monotonic()  # counted from the end of the work: a slow delivery is no idle time
    finally:
        await consumer.stop()
        await producer.stop()
    return report
