"""A bare relay: the worker's two broker hops with nothing in between.

    python -m bench.worker.relay BOOTSTRAP SOURCE_TOPIC OUTPUT_TOPIC

Reads SOURCE_TOPIC as the worker does (consumer group, fetch wait 10 ms) and writes,
for every event, a change-shaped record ({"at", "cause"}) to OUTPUT_TOPIC as the
worker does: one record batch per partition per fetch, sent at once. The latency
benchmark runs it beside the worker, with the same sender and reader, so the broker's
share of the event-to-change latency (two hops) can be told from the worker's.
"""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

FETCH_WAIT_MS = 10  # the worker's default (stream.settings.Settings.fetch_wait_ms)


def change_for(value: bytes) -> bytes:
    event = orjson.loads(value)
    at = datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc).isoformat(timespec="milliseconds")
    return orjson.dumps({"at": at.replace("+00:00", "Z"), "cause": event["event_id"]})


async def relay(bootstrap: str, source: str, output: str) -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=f"relay-{source}",
                                auto_offset_reset="latest", fetch_max_wait_ms=FETCH_WAIT_MS,
                                session_timeout_ms=6000, heartbeat_interval_ms=1000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        print("relay ready", flush=True)
        while True:
            fetched = await consumer.getmany(timeout_ms=100)
            for tp, records in fetched.items():
                batch = producer.create_batch()
                for record in records:
                    change = change_for(record.value)
                    if batch.append(key=record.key, value=change, timestamp=None) is None:  # full
                        await producer.send_batch(batch, output, partition=tp.partition)
                        batch = producer.create_batch()
                        batch.append(key=record.key, value=change, timestamp=None)
                await producer.send_batch(batch, output, partition=tp.partition)
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(relay(*sys.argv[1:4]))
