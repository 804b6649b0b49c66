"""The Faust app: topics, the customer-state table, the evaluating agent and the timer task.

Input messages are taken in batches; each batch is evaluated synchronously by the
`Processor`, every changed customer state is written to the table once, and the
producer is flushed before the next round, so a change event is never sent before
the state that remembers it (see `Processor._publish` and the outbox) and offsets are
only committed after both (Faust flushes the producer before every commit).
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust

from rules import Change, Engine
from rules.language.model import Definitions
from faust.types import TP

from stream.kafka import faustfixes
from stream.kafka.batchoutput import BatchOutput
from stream.kafka.handover import PendingHandovers
from stream.kafka.messages import Message
from stream.kafka.processor import BatchStats, Processor, Topics
from stream.kafka.statestore import ALIAS_PREFIX, TableAliases, TableStates
from stream.kafka.storewrites import Writes, store_writes
from stream.gcpause import ServiceCollector, tune_for_service
from stream.kafka.timers import TimerIndex
from stream.metrics.collector import WorkerCollector
from stream.metrics.worker import WorkerMetrics
from stream.settings import Settings, advertised_url

_LOG = logging.getLogger("segmenter.worker")
TIMER_TICK = 0.02  # seconds between checks for due time-based flips


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions)


class _StrKeys(MutableMapping[str, bytes]):
    """The Faust table seen with str keys (the table itself stores raw bytes).

    Reads go to the table's store directly, as the worker's writes already do
    (`_write_states`): `Table.get` adds a sensor call and a `__missing__` round trip per
    lookup, which for new customers (every lookup a miss) cost more than the read."""

    def __init__(self, table: Any, unconfirmed: dict[bytes, tuple[int, bytes | None]]) -> None:
        self.table = table
        self.unconfirmed = unconfirmed  # writes of rounds Kafka has not acknowledged yet (see `_write_states`)

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        raw_key = key.encode()
        pending = self.unconfirmed.get(raw_key)
        found = self.table.data.get(raw_key) if pending is None else pending[1]
        return default if found is None else found

    def __getitem__(self, key: str) -> bytes:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key.encode()]

    def __iter__(self) -> Iterator[str]:
        return (key.decode() for key in self.table.keys())

    def __len__(self) -> int:
        return len(self.table)


class SegmenterApp:
    """Builds and holds the Faust app for one worker process."""

    def __init__(self, settings: Settings, definitions: Definitions) -> None:
        faustfixes.patch_fetch_wait(settings.fetch_wait_ms)
        faustfixes.patch_end_offsets()
        faustfixes.rewind_uncommitted({*settings.topics, settings.repartition_topic})
        import faust.transport.producer as producer_module

        producer_module.ProducerBuffer.max_messages = 20_000
        self.settings = settings
        self.app = faust.App(
            settings.app_id,
            broker=settings.brokers,
            store=settings.store,
            datadir=str(settings.data_dir),
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication,
            broker_session_timeout=settings.session_timeout,
            broker_rebalance_timeout=settings.rebalance_timeout,
            broker_heartbeat_interval=1,
            broker_request_timeout=max(40.0, settings.session_timeout + 5),
            producer_linger=settings.producer_linger,
            producer_max_batch_size=512 * 1024,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            stream_wait_empty=False,
            table_standby_replicas=0,
            web_enabled=settings.web_port > 0,
            web_port=max(settings.web_port, 1),
            web_bind=settings.web_host,
            canonical_url=advertised_url(settings),
            web_tables_enabled=False,  # Faust's raw table pages would bypass the API token
            web_router_enabled=False,
            broker_credentials=_credentials(settings),
        )
        n = settings.partitions
        self.inputs = [_raw_topic(self.app, name, n) for name in settings.topics]
        self.repartition = _raw_topic(self.app, settings.repartition_topic, n)
        self.channel = self.app.topic(*settings.topics, settings.repartition_topic, key_type=bytes, value_type=bytes,
                                      key_serializer="raw", value_serializer="raw", partitions=n)
        self.table = self.app.Table("customers", key_type=bytes, value_type=bytes, partitions=n, default=None)
        # raw key -> (round, value) written by a round whose output Kafka has not acknowledged yet
        self.unconfirmed: dict[bytes, tuple[int, bytes | None]] = {}
        view = _StrKeys(self.table, self.unconfirmed)
        self.states = TableStates(view)
        self.aliases = TableAliases(view)
        self.engine = Engine(definitions, self.states, self.aliases)
        self.timers = TimerIndex(self._timer_topics(), self._highwater, self._committed)
        self.output = BatchOutput(n)
        self.changelog = f"{settings.app_id}-customers-changelog"
        self.processor = Processor(
            self.engine, self.states, self.aliases, self.timers, self.output,
            Topics(settings.changes_topic, settings.dlq_topic, settings.repartition_topic), settings.max_event_bytes,
        )
        self.lock = asyncio.Lock()
        self.ready = False
        self.ready_once = False
        self.collector: ServiceCollector | None = None  # set once the worker is first ready
        self._acknowledged: asyncio.Future[None] | None = None  # the latest round's acknowledgement
        self.stats = BatchStats()
        self.round_timing = [0, 0.0, 0.0, 0.0]  # rounds, seconds evaluating, writing state, flushing
        self.metrics = WorkerMetrics()
        self.metrics.registry.register(WorkerCollector(self))
        self.processor.on_change = self.metrics.changed
        self._wire()
        if settings.web_port > 0:
            from stream.web.routes import install

            install(self)

    # -- writing state ------------------------------------------------------------------
    def _write_states(self, round_id: int) -> Writes:
        """Queue the changelog record of every changed state. The local store gets the
        writes only once Kafka has acknowledged the round (`_confirm`): a store written
        before would, after a crash, hold states of rounds whose forwards never reached
        Kafka and whose input is read again, so that input would not be processed as it
        was (an identify would find its hand-over in flight and wait for it forever).
        Until then reads find the writes in `unconfirmed`."""
        by_partition: Writes = {}
        partition_of, partition_for = self.processor.partition_of, self.output.partition_for

        def collect(key: str, value: bytes | None) -> None:
            raw_key = key.encode()
            partition = partition_of.get(key)
            if partition is None:
                partition = partition_for(raw_key)
            by_partition.setdefault(partition, []).append((raw_key, value))

        self.states.flush(collect)
        self.aliases.flush(collect)
        unconfirmed, changelog, send = self.unconfirmed, self.changelog, self.output.send
        for partition, writes in by_partition.items():
            for raw_key, value in writes:
                unconfirmed[raw_key] = (round_id, value)
                send(changelog, raw_key, value, partition=partition)
        return by_partition

    def _store_confirmed(self, round_id: int, by_partition: Writes) -> None:
        """A round's output is in Kafka: put its writes in the local store."""
        store_writes(self.table.data, self.settings.repartition_topic, by_partition)
        unconfirmed = self.unconfirmed
        for writes in by_partition.values():
            for raw_key, _ in writes:
                pending = unconfirmed.get(raw_key)
                if pending is not None and pending[0] == round_id:  # no later round wrote it meanwhile
                    del unconfirmed[raw_key]

    async def _round(self, work: Any) -> asyncio.Future[None]:
        """One unit of work: evaluate, write state and hand everything to the producer.

        Returns once the output is sent, with a future that resolves once Kafka has
        acknowledged it (and every earlier round's output): only then may the caller ack
        the round's input, so Faust commits past it. The next round does not wait for
        that acknowledgement, which keeps a broker round trip out of every event's way."""
        async with self.lock:
            started = time.perf_counter()
            self.processor.begin_round()
            round_id = self.processor.round
            work()
            self.metrics.counts.count_new(self.states.created())
            processed = time.perf_counter()
            writes = self._write_states(round_id)
            written = time.perf_counter()
            sent = await self.output.start_flush(self.app.producer._ensure_producer())
            previous = self._acknowledged
            self._acknowledged = asyncio.ensure_future(self._confirm(round_id, sent, self.metrics.sent(), previous,
                                                                     started, processed, written, writes))
            self._acknowledged.add_done_callback(self._stop_if_unsent)
            return self._acknowledged

    def _stop_if_unsent(self, acknowledged: asyncio.Future[None]) -> None:
        """Output Kafka did not take stops the worker, as a failed send always did: its
        input stays unacknowledged and its changes stay in the states' outboxes."""
        if not acknowledged.cancelled() and acknowledged.exception() is not None:
            asyncio.ensure_future(self.app.crash(acknowledged.exception()))

    async def _confirm(self, round_id: int, sent: asyncio.Future[dict[tuple[str, int], int]],
                       changes: list[tuple[Change, int]], previous: asyncio.Future[None] | None, started: float,
                       processed: float, written: float,
                       writes: Writes) -> None:
        """A round's output is in Kafka: store its writes, record changelog offsets and
        metrics, in round order."""
        offsets = await sent
        if previous is not None:
            await previous
        self._store_confirmed(round_id, writes)
        for (topic, partition), offset in offsets.items():
            if topic == self.changelog:
                self.table.data.set_persisted_offset(TP(topic, partition), offset)
        self.processor.confirm(round_id)
        flushed = time.perf_counter()
        self.metrics.published(changes)
        timing = self.round_timing
        if not timing[0]:
            self.first_round = started
        self.last_round = flushed
        timing[0] += 1
        timing[1] += processed - started
        timing[2] += written - processed
        timing[3] += flushed - written

    # -- Faust wiring ----------------------------------------------------------------
    def _wire(self) -> None:
        app, settings = self.app, self.settings

        if settings.delivery == "batch":
            app.topics.add(self.channel)  # subscribe; messages bypass streams (faustfixes)

            async def deliver(batch: list[Any]) -> asyncio.Future[None]:
                # records without headers go as they are (see `Incoming`): no copy per record
                messages = [_record_message(record) if record.headers else record for record in batch]
                return await self._round(lambda: self.processor.process(messages, self.stats))

            faustfixes.deliver_in_batches(app, set(settings.topics) | {settings.repartition_topic}, deliver)
        else:
            @app.agent(self.channel, name="segmenter.evaluate")
            async def evaluate(stream: Any) -> None:
                async for batch in stream.take_events(settings.batch_size, within=settings.batch_wait):
                    messages = [_message(event) for event in batch]
                    await (await self._round(lambda: self.processor.process(messages, self.stats)))

        @app.task
        async def fire_timers() -> None:
            while True:
                await asyncio.sleep(TIMER_TICK)
                now = int(time.time() * 1000)
                upcoming = self.timers.next_instant()
                due = upcoming is not None and upcoming <= now
                if self.ready and (due or self.processor.pending or self.processor.handed_acknowledged()):
                    await self._round(lambda: self.processor.fire(now, self.stats))

        @app.timer(60.0)
        async def sweep_garbage() -> None:
            if self.collector is not None:
                self.collector.sweep()

        if os.environ.get("SEGMENTER_DEBUG_ROUNDS"):
            @app.timer(5.0)
            async def report_rounds() -> None:
                busy = sum(self.round_timing[1:])
                span = getattr(self, "last_round", 0) - getattr(self, "first_round", 0)
                print(f"rounds {self.round_timing} busy {busy:.2f}s of {span:.2f}s, "
                      f"messages {sum(self.stats.by_topic.values())}", file=sys.stderr, flush=True)

        @app.on_partitions_revoked.connect
        async def revoked(sender: Any, revoked: Any, **_: Any) -> None:
            self.ready = False
            self.states.cache.clear()

        @self.table.on_recover
        async def recovered() -> None:
            await self._rebuild()

    def _highwater(self, topic: str, partition: int) -> int | None:
        try:
            return self.app.consumer.highwater(TP(topic, partition))  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - not assigned or not fetched yet
            return None

    def _committed(self, topic: str, partition: int) -> int | None:
        return self.app.consumer._committed_offset.get(TP(topic, partition))  # type: ignore[no-any-return]

    def _timer_topics(self) -> tuple[str, ...]:
        return (*self.settings.topics, self.settings.repartition_topic)

    async def _rebuild(self) -> None:
        """After (re)assignment: rebuild the timer index and re-send what states hold unconfirmed."""
        acknowledged = self._acknowledged
        if acknowledged is not None and not acknowledged.done():
            await asyncio.wait([acknowledged])  # rounds still in flight: their writes reach the store first
        held = faustfixes.held_partitions(self.app, self.settings.repartition_topic)
        self.timers = self.processor.timers = TimerIndex(self._timer_topics(), self._highwater, self._committed)
        self.timers.assigned(held)
        self.processor.pending = PendingHandovers()
        self.processor.handed_over = []  # those of the partitions held now come back from the table
        republished = 0
        self.metrics.counts.reset()
        from rules.evaluate.state import CustomerState

        for raw_key, raw in list(self.table.items()):
            key = raw_key.decode()
            if key.startswith(ALIAS_PREFIX) or raw is None:
                continue
            state = CustomerState.from_bytes(raw)
            if state.partition in held:
                self.metrics.counts.add_state(key, state)
                self.timers.schedule(key, state.partition, state.wake)
                republished += self.processor.recover(key, state)
        if republished:
            await self.output.flush(self.app.producer._ensure_producer())
        if not self.ready_once:
            self.collector = tune_for_service(self.metrics.gc_paused)  # start-up and recovery are done: freeze what they built
            self.ready_once = True
        self.ready = True
        print(f"segmenter worker ready: partitions {sorted(held)}, {len(self.timers)} timers, "
              f"{republished} messages re-sent (pid {os.getpid()})", file=sys.stderr, flush=True)


def _message(event: Any) -> Message:
    return _raw_message(event.message, event.key, event.value)


def _raw_message(meta: Any, key: Any = None, value: Any = None) -> Message:
    if value is None:
        key, value = meta.key, meta.value
    headers = meta.headers
    if headers and not isinstance(headers, dict):
        headers = {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in headers}
    return Message(meta.topic, meta.partition, meta.offset, key, value, dict(headers or {}),
                   int((meta.timestamp or 0) * 1000))


def _record_message(record: Any) -> Message:
    """An aiokafka ConsumerRecord with headers (a list of pairs) -> a `Message` (a dict)."""
    return Message(record.topic, record.partition, record.offset, record.key, record.value, dict(record.headers),
                   record.timestamp or 0)


def _credentials(settings: Settings) -> Any:
    protocol = settings.security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    import ssl

    context = None
    if "SSL" in protocol:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    if protocol.startswith("SASL"):
        mechanism = (settings.sasl_mechanism or "PLAIN").upper()
        if mechanism == "PLAIN":
            return faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                         ssl_context=context)
        return faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                     ssl_context=context, mechanism=mechanism)
    return faust.SSLCredentials(context)
