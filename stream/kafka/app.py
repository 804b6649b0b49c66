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
import sys
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from rules import Engine
from rules.language.model import Definitions
from stream.kafka import faustfixes
from stream.kafka.messages import Message
from stream.kafka.processor import BatchStats, Processor, Topics
from stream.kafka.statestore import ALIAS_PREFIX, TableAliases, TableStates
from stream.kafka.timers import TimerIndex
from stream.settings import Settings

_LOG = logging.getLogger("segmenter.worker")
TIMER_TICK = 0.02  # seconds between checks for due time-based flips


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions)


class _StrKeys(MutableMapping[str, bytes]):
    """The Faust table seen with str keys (the table itself stores raw bytes)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        found = self.table.get(key.encode())
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


class _FaustOutput:
    def __init__(self, app: faust.App, partitions: int) -> None:
        self.app = app
        self.partitions = partitions
        self.topics: dict[str, Any] = {}

    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        channel = self.topics.get(topic)
        if channel is None:
            channel = self.topics[topic] = _raw_topic(self.app, topic, self.partitions)
        channel.send_soon(key=key, value=value, headers=list((headers or {}).items()) or None)


class SegmenterApp:
    """Builds and holds the Faust app for one worker process."""

    def __init__(self, settings: Settings, definitions: Definitions) -> None:
        faustfixes.patch_fetch_wait(settings.fetch_wait_ms)
        faustfixes.patch_end_offsets()
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
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            stream_wait_empty=False,
            table_standby_replicas=0,
            web_enabled=settings.web_port > 0,
            web_port=max(settings.web_port, 1),
            web_bind=settings.web_host,
            broker_credentials=_credentials(settings),
        )
        n = settings.partitions
        self.inputs = [_raw_topic(self.app, name, n) for name in settings.topics]
        self.repartition = _raw_topic(self.app, settings.repartition_topic, n)
        self.channel = self.app.topic(*settings.topics, settings.repartition_topic, key_type=bytes, value_type=bytes,
                                      key_serializer="raw", value_serializer="raw", partitions=n)
        self.table = self.app.Table("customers", key_type=bytes, value_type=bytes, partitions=n, default=None)
        view = _StrKeys(self.table)
        self.states = TableStates(view)
        self.aliases = TableAliases(view)
        self.engine = Engine(definitions, self.states, self.aliases)
        self.timers = TimerIndex()
        self.output = _FaustOutput(self.app, n)
        self.processor = Processor(
            self.engine, self.states, self.aliases, self.timers, self.output,
            Topics(settings.changes_topic, settings.dlq_topic, settings.repartition_topic), settings.max_event_bytes,
        )
        self.lock = asyncio.Lock()
        self.ready = False
        self.stats = BatchStats()
        self._wire()

    # -- writing state ------------------------------------------------------------------
    def _flush_states(self) -> int:
        topic = self.settings.repartition_topic
        partitions = self.settings.partitions
        table = self.table

        def write(key: str, value: bytes | None) -> None:
            partition = self.processor.partition_of.get(key)
            if partition is None:
                partition = (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
            faustfixes.write_to_partition(topic, partition)
            if value is None:
                if table.get(key.encode()) is not None:
                    del table[key.encode()]
            else:
                table[key.encode()] = value

        return self.states.flush(write) + self.aliases.flush(write)

    async def _round(self, work: Any) -> None:
        async with self.lock:
            self.processor.begin_round()
            work()
            self._flush_states()
            await self.app.producer.flush()

    # -- Faust wiring ----------------------------------------------------------------
    def _wire(self) -> None:
        app, settings = self.app, self.settings

        @app.agent(self.channel, name="segmenter.evaluate")
        async def evaluate(stream: Any) -> None:
            async for batch in stream.take_events(settings.batch_size, within=settings.batch_wait):
                messages = [_message(event) for event in batch]
                await self._round(lambda: self.processor.process(messages, self.stats))

        @app.task
        async def fire_timers() -> None:
            while True:
                await asyncio.sleep(TIMER_TICK)
                now = int(time.time() * 1000)
                upcoming = self.timers.next_instant()
                if self.ready and upcoming is not None and upcoming <= now:
                    await self._round(lambda: self.processor.fire(now, self.stats))

        @app.on_partitions_revoked.connect
        async def revoked(sender: Any, revoked: Any, **_: Any) -> None:
            self.ready = False
            self.states.cache.clear()

        @self.table.on_recover
        async def recovered() -> None:
            await self._rebuild()

    async def _rebuild(self) -> None:
        """After (re)assignment: rebuild the timer index and re-send unconfirmed changes."""
        held = faustfixes.held_partitions(self.app, self.settings.repartition_topic)
        self.timers = self.processor.timers = TimerIndex()
        republished = 0
        from rules.evaluate.state import CustomerState

        for raw_key, raw in list(self.table.items()):
            key = raw_key.decode()
            if key.startswith(ALIAS_PREFIX) or raw is None:
                continue
            state = CustomerState.from_bytes(raw)
            if state.partition in held:
                self.timers.schedule(key, state.partition, state.wake)
                if state.outbox:
                    for _, value in state.outbox:
                        self.output.send(self.settings.changes_topic, raw_key, value)
                    republished += len(state.outbox)
        if republished:
            await self.app.producer.flush()
        self.ready = True
        print(f"segmenter worker ready: partitions {sorted(held)}, {len(self.timers)} timers, "
              f"{republished} changes re-sent", file=sys.stderr, flush=True)


def _message(event: Any) -> Message:
    meta = event.message
    headers = meta.headers
    if headers and not isinstance(headers, dict):
        headers = {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in headers}
    return Message(meta.topic, meta.partition, meta.offset, event.key, event.value, dict(headers or {}),
                   int((meta.timestamp or 0) * 1000))


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
