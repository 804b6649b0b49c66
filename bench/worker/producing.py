"""Pre-producing generated shop events with aiokafka's batch API."""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from examples.traffic import TrafficConfig, generate, key_of
from stream.demo.traffic import topic_for
from bench.worker.common import Bench, INPUTS, PARTITIONS, log


async def produce_batched(bootstrap: str, messages: list[tuple[str, bytes | None, bytes]]) -> dict[TopicPartition, int]:
    """Produce with aiokafka's batch API, one sender per partition; returns messages per partition."""
    partitions = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()
    by_tp: dict[TopicPartition, list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for topic, key, value in messages:
        by_tp[TopicPartition(topic, partitioner(key, partitions, partitions))].append((key, value))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()

    async def send(tp: TopicPartition, items: list[tuple[bytes | None, bytes]]) -> None:
        futures = []
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
        await asyncio.gather(*futures)

    try:
        await asyncio.gather(*(send(tp, items) for tp, items in by_tp.items()))
    finally:
        await producer.stop()
    return {tp: len(items) for tp, items in by_tp.items()}


async def pre_produce(bench: Bench, n: int) -> int:
    """N generated shop events, ending now; returns the number of customers simulated."""
    await bench.create(*INPUTS)
    customers = max(200, n // 16)  # ~16 events per customer over 400 days: the stream ends about now
    config = TrafficConfig(customers=customers, days=400, start=datetime.now(timezone.utc) - timedelta(days=400))
    started = time.perf_counter()
    events = list(itertools.islice(generate(config), n))
    messages = [(topic_for(raw), key_of(raw), raw) for raw in events]
    generated = time.perf_counter() - started
    started = time.perf_counter()
    counts = await produce_batched(bench.bootstrap, messages)
    produced = time.perf_counter() - started
    bench.ends = {TopicPartition(topic, p): counts.get(TopicPartition(topic, p), 0)
                  for topic in INPUTS for p in range(PARTITIONS)}
    log(f"generated {len(events):,} events of {customers:,} customers in {generated:.1f}s, "
        f"produced in {produced:.1f}s ({len(events) / produced:,.0f}/s)")
    return customers
