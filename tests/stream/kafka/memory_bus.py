"""An in-memory stand-in for the broker around `Processor`: partitions are FIFO queues,
the repartition topic feeds back into them, other topics are collected."""
from __future__ import annotations

from collections import deque

from aiokafka.partitioner import murmur2

from rules import Engine
from rules.language.model import Definitions
from stream.kafka.messages import Message
from stream.kafka.processor import BatchStats, Processor, Topics
from stream.kafka.statestore import ALIAS_PREFIX, TableAliases, TableStates
from rules.evaluate.state import CustomerState
from stream.kafka.timers import TimerIndex

TOPICS = Topics("segment-changes", "segmenter-dlq", "segmenter-repartition")


def partition_of(key: bytes | None, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions if key is not None else 0


class MemoryBus:
    def __init__(self, definitions: Definitions, partitions: int = 4) -> None:
        self.partitions = partitions
        self.queues: list[deque[Message]] = [deque() for _ in range(partitions)]
        self.offsets = [0] * partitions
        self.sent: dict[str, list[tuple[bytes | None, bytes, dict[str, bytes]]]] = {}
        self.table: dict[str, bytes] = {}
        self.definitions = definitions
        self._start()
        self.stats = BatchStats()

    def _start(self) -> None:
        """A worker's view of the table: every cache and index empty."""
        self.states = TableStates(self.table)
        self.aliases = TableAliases(self.table)
        self.engine = Engine(self.definitions, self.states, self.aliases)
        self.timers = TimerIndex(("orders", "behavior", "customers", TOPICS.repartition))
        self.processor = Processor(self.engine, self.states, self.aliases, self.timers, self, TOPICS)

    def restart(self) -> int:
        """A new worker process over the table as the changelog left it, recovering every
        state as the worker does after an assignment; returns the messages re-sent."""
        self._start()
        sent = 0
        for key, raw in list(self.table.items()):
            if not key.startswith(ALIAS_PREFIX):
                sent += self.processor.recover(key, CustomerState.from_bytes(raw))
        return sent

    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        if topic == TOPICS.repartition:
            self.put(topic, key, value, headers or {})
        else:
            self.sent.setdefault(topic, []).append((key, value, dict(headers or {})))

    def put(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        partition = partition_of(key, self.partitions)
        self.queues[partition].append(Message(topic, partition, self.offsets[partition], key, value, headers or {}))
        self.offsets[partition] += 1

    def run(self, batch: int = 50) -> None:
        """Process until every queue is empty, a batch per partition in turn; then, as
        a worker does once its input is quiet, let waiting hand-overs go, and go on."""
        while any(self.queues) or self.processor.pending:
            for queue in self.queues:
                if queue:
                    taken = [queue.popleft() for _ in range(min(batch, len(queue)))]
                    self.processor.begin_round()
                    self.processor.process(taken, self.stats)
                    self._flush()
            if not any(self.queues) and self.processor.pending:
                self.timers.mark_idle()
                self.processor.begin_round()
                self.processor.resume(2**62, self.stats)
                self._flush()

    def take(self, partition: int, acknowledge: bool = True) -> int:
        """One round over everything queued on `partition`; returns the round's id.
        Without `acknowledge` its writes reach the table but Kafka has not confirmed
        it yet (a worker does not wait for that before its next round)."""
        queue = self.queues[partition]
        self.processor.begin_round()
        self.processor.process([queue.popleft() for _ in range(len(queue))], self.stats)
        if acknowledge:
            self._flush()
        else:
            self.states.flush(self._write)
            self.aliases.flush(self._write)
        return self.processor.round

    def _flush(self) -> None:
        self.states.flush(self._write)
        self.aliases.flush(self._write)
        self.processor.confirm(self.processor.round)  # sent in memory: as good as acknowledged

    def fire(self, now: int, idle: bool = True) -> None:
        """Fire due flips; `idle` means all input is processed, so flips follow `now`."""
        if idle:
            self.timers.mark_idle()
        self.processor.begin_round()
        self.processor.fire(now, self.stats)
        self._flush()

    def _write(self, key: str, value: bytes | None) -> None:
        if value is None:
            self.table.pop(key, None)
        else:
            self.table[key] = value
