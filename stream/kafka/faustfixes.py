"""Everything that reaches into faust-streaming internals, in one place.

faust-streaming 0.15.3 needs five adjustments here (measured on the embedded broker,
see the README's operations notes):
  * the worker consumer's fetch wait is hard-coded to 1,500 ms; a broker that never
    answers a fetch early (Tansu) then adds that to every event's latency;
  * table recovery trusts the broker's "latest offset"; Tansu answers with the start
    of the last batch, so recovery stopped early and lost the tail of the changelog.
    The high watermark of a fetch response is right, so we read that instead;
  * a table write needs "the current event" to pick its changelog partition; inside a
    batch (take_events) or a timer there is none, so we set the partition ourselves;
  * Faust's worker leaves the root logger at DEBUG (for its spinner);
  * after a rebalance Faust seeks every partition back to its committed offset, but
    aiokafka skips the seek when that offset is 0 or missing, so messages fetched (and
    dropped because the rebalance began) before a group's first commit were never read
    again; those partitions are now rewound to their start.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

_LOG = logging.getLogger(__name__)


def patch_fetch_wait(milliseconds: int) -> None:
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "_segmenter", False):
        driver.AIOKafkaConsumerThread._fetch_wait_ms = milliseconds  # type: ignore[attr-defined]
        return

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = getattr(driver.AIOKafkaConsumerThread, "_fetch_wait_ms", milliseconds)
        return consumer

    create._segmenter = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._fetch_wait_ms = milliseconds  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create


def patch_end_offsets(timeout_ms: int = 3000) -> None:
    """Read true end offsets from fetch high watermarks (see module docstring)."""
    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread._highwaters
    if getattr(original, "_segmenter", False):
        return

    async def highwaters(self: Any, partitions: Any) -> Any:
        ends = dict(await original(self, partitions))
        probe = [tp for tp, end in ends.items() if end]
        if not probe or self.consumer.in_transaction:
            return ends
        main = self._ensure_consumer()
        reader = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=main._client._bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=10,
            security_protocol=main._client._security_protocol, ssl_context=main._client._ssl_context,
            sasl_mechanism=main._client._sasl_mechanism, sasl_plain_username=main._client._sasl_plain_username,
            sasl_plain_password=main._client._sasl_plain_password,
        )
        await reader.start()
        try:
            reader.assign(list(probe))
            for tp in probe:
                reader.seek(tp, ends[tp] - 1)
            pending = set(probe)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_ms / 1000
            while pending and loop.time() < deadline:
                await reader.getmany(*pending, timeout_ms=100)
                for tp in list(pending):
                    high = reader.highwater(tp)
                    if high is not None:
                        ends[tp] = max(ends[tp], high)
                        pending.discard(tp)
            if pending:
                _LOG.warning("could not read the end offset of %s; recovery may stop early", pending)
        finally:
            await reader.stop()
        return ends

    highwaters._segmenter = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._highwaters = highwaters


def rewind_uncommitted(topics: set[str]) -> None:
    """Seek partitions of `topics` with no committed offset to offset 0 (see module docstring)."""
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread.seek_to_committed
    if getattr(original, "_segmenter", False):
        driver.AIOKafkaConsumerThread._rewind_topics = set(topics)  # type: ignore[attr-defined]
        return

    async def seek_to_committed(self: Any) -> Any:
        consumer = self._ensure_consumer()
        wanted = getattr(driver.AIOKafkaConsumerThread, "_rewind_topics", set())

        async def seek() -> Any:
            committed = await consumer.seek_to_committed()
            for tp in consumer.assignment():
                if tp.topic in wanted and not committed.get(tp):
                    consumer.seek(tp, 0)  # out of range (retention) resets to the earliest offset
            return committed

        return await self.call_thread(seek)

    seek_to_committed._segmenter = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._rewind_topics = set(topics)  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread.seek_to_committed = seek_to_committed


class _PartitionEvent:
    """Stands in for Faust's current event: table writes go to `partition`."""

    __slots__ = ("message", "__weakref__")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Meta(topic, partition)


class _Meta:
    __slots__ = ("topic", "partition")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


_KEEP: dict[tuple[str, int], _PartitionEvent] = {}


def write_to_partition(topic: str, partition: int) -> None:
    """Make the next table writes go to `partition` of the table's changelog; call
    `writes_done` after them."""
    from faust.streams import _current_event

    stand_in = _KEEP.get((topic, partition))
    if stand_in is None:
        stand_in = _KEEP[(topic, partition)] = _PartitionEvent(topic, partition)
    _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]


def writes_done() -> None:
    """Forget the stand-in of `write_to_partition`. The rocksdb store reads a key from the
    current event's partition alone when there is a current event, so a stand-in left
    in place sent every later read to the partition written last: after a restart
    (nothing cached yet) customers of the other partitions were not found and started
    over. Without one, it looks in the partition it knows for the key, else in each."""
    from faust.streams import _current_event

    _current_event.set(None)


def quiet_logging(level: int = logging.WARNING) -> None:
    logging.getLogger().setLevel(level)
    for name in ("faust.transport.producer", "aiokafka.consumer.group_coordinator", "aiokafka.consumer.fetcher"):
        logging.getLogger(name).setLevel(logging.ERROR)


def held_partitions(app: Any, topic: str) -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def deliver_in_batches(app: Any, topics: set[str], handle: Any) -> None:
    """Hand every fetched batch of `topics` records to `await handle(records)` directly.

    Faust's consumer loop turns every record into a message object, reports it to its
    sensors, awaits `wait_first(...)` (several futures and an `asyncio.wait`) and acks
    it under a lock, one by one, which caps a worker at a few thousand events per
    second. Here the records of our topics (aiokafka `ConsumerRecord`s) are taken out of
    each fetch, processed as one batch, then acked together; Faust still owns group
    membership, flow control during rebalances, offset commits (after a producer flush)
    and the tables. Other topics flow as usual.
    """
    from faust.transport.consumer import Consumer, ack_lock

    original = Consumer.getmany
    if not getattr(original, "_segmenter", False):
        async def getmany(self: Any, timeout: float) -> Any:
            route = getattr(self.app, "_segmenter_batches", None)
            if route is None:
                async for item in original(self, timeout):
                    yield item
                return
            wanted, deliver = route
            records, active = await self._wait_next_records(timeout)
            generation = self.app.consumer_generation_id
            if records is None or self.should_stop:
                return
            if not self.flow_active:
                try:
                    await self.perform_seek()
                except Exception as exc:  # noqa: BLE001 - as Faust does
                    self.log.warning(f"exception performing seek when flow not active {exc}")
                return
            buffered = self._buffered_partitions
            ours, others = [], {}
            for tp, found in records.items():
                if active is not None and tp not in active and tp not in buffered:
                    continue
                if tp.topic in wanted:
                    ours.append((tp, found))
                else:
                    others[tp] = found
            for tp, record in self.scheduler.iterate(others):
                if not self.flow_active or self.app.consumer_generation_id != generation:
                    return
                yield tp, self._to_message(tp, record)
            if not ours or not self.flow_active or self.app.consumer_generation_id != generation:
                return  # a rebalance began: the partitions' next owner reads these again
            done = await deliver([record for _, found in ours for record in found])
            if done is None:
                _ack_all(self, ours, ack_lock)
            else:  # ack once the output is in Kafka; meanwhile the next batch goes on
                acks = self.__dict__.setdefault("_segmenter_acks", set())
                task = asyncio.ensure_future(_ack_when_done(self, done, ours, generation, ack_lock))
                acks.add(task)
                task.add_done_callback(acks.discard)

        getmany._segmenter = True  # type: ignore[attr-defined]
        Consumer.getmany = getmany  # type: ignore[method-assign]
    app._segmenter_batches = (set(topics), handle)


async def _ack_when_done(consumer: Any, done: Any, batches: list[tuple[Any, list[Any]]], generation: int,
                         lock: Any) -> None:
    """Ack a delivered batch when its output is acknowledged. A failed send leaves it
    unacked, to be read again: `done`'s owner stops the worker for it
    (`SegmenterApp._stop_if_unsent`). After a rebalance the batch is left to the
    partitions' next owner."""
    try:
        await done
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - not published: never ack
        return
    if consumer.app.consumer_generation_id == generation:
        _ack_all(consumer, batches, lock)


def _ack_all(consumer: Any, batches: list[tuple[Any, list[Any]]], lock: Any) -> None:
    """What `Consumer.ack` does per message, for whole batches: offsets at or past the
    committed one become eligible for the next commit."""
    with lock:
        for tp, records in batches:
            committed = consumer._committed_offset[tp]
            index = consumer._acked_index[tp]
            fresh = [r.offset for r in records
                     if (committed is None or r.offset >= committed) and r.offset not in index]
            index.update(fresh)
            consumer._acked[tp].extend(fresh)
            consumer._n_acked += len(fresh)
