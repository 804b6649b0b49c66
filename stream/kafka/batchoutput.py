"""Outgoing messages of one round, sent as record batches per partition.

Faust's `send_soon` costs tens of microseconds per message (futures, buffers,
callbacks); the worker sends tens of thousands per round (change events, forwards,
dead letters and changelog records), so it queues them here and hands each
(topic, partition) group to the Kafka producer as whole record batches.
"""
from __future__ import annotations

import asyncio
import itertools
from typing import Any

from stream.kafka.partitioner import default_partition

Queued = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
NO_HEADERS: list[tuple[str, bytes]] = []


class BatchOutput:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.queue: dict[tuple[str, int], list[Queued]] = {}
        self._spread = itertools.count()

    def partition_for(self, key: bytes | None) -> int:
        if key is None:
            return next(self._spread) % self.partitions
        return default_partition(key, self.partitions)

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, bytes] | None = None,
             partition: int | None = None) -> None:
        target = self.partition_for(key) if partition is None else partition
        self.queue.setdefault((topic, target), []).append((key, value, list(headers.items()) if headers else NO_HEADERS))

    def __len__(self) -> int:
        return sum(len(items) for items in self.queue.values())

    async def flush(self, producer: Any) -> dict[tuple[str, int], int]:
        """Send everything queued and wait until Kafka has it; returns the last offset
        written per (topic, partition)."""
        return await (await self.start_flush(producer))

    async def start_flush(self, producer: Any) -> asyncio.Future[dict[tuple[str, int], int]]:
        """Hand everything queued to the producer; the returned future resolves (to the
        last offset per (topic, partition)) once Kafka has acknowledged all of it. The
        producer keeps each partition's batches in order."""
        queue, self.queue = self.queue, {}
        sends: list[tuple[tuple[str, int], int, Any]] = []
        for (topic, partition), items in queue.items():
            batch, count = producer.create_batch(), 0
            for key, value, headers in items:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    sends.append(((topic, partition), count, await producer.send_batch(batch, topic, partition=partition)))
                    batch, count = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise ValueError(f"a message for {topic} is larger than the producer's batch size")
                count += 1
            if count:
                sends.append(((topic, partition), count, await producer.send_batch(batch, topic, partition=partition)))
        return asyncio.ensure_future(_last_offsets(sends))


async def _last_offsets(sends: list[tuple[tuple[str, int], int, Any]]) -> dict[tuple[str, int], int]:
    results = await asyncio.gather(*(future for _, _, future in sends))
    last: dict[tuple[str, int], int] = {}
    for (target, count, _), metadata in zip(sends, results):
        last[target] = max(last.get(target, -1), metadata.offset + count - 1)
    return last
