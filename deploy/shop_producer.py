"""Demo traffic for docker-compose: the simulated shop of `segmenter demo`, sent to Kafka.

It backfills some days of history (so time-based segments have something to flip),
then plays live events stamped with the wall clock until stopped. Settings come from
the environment, like the other services of the compose file:
SEGMENTER_BROKERS (kafka://host:port, comma-separated), SHOP_CUSTOMERS, SHOP_DAYS,
SHOP_RATE (live events per second).
"""
from __future__ import annotations

import asyncio
import os

from aiokafka import AIOKafkaProducer

from stream.demo.traffic import history, play_live, send_history


def bootstrap_servers(brokers: str) -> list[str]:
    """`kafka://a:9092,b:9092` -> `["a:9092", "b:9092"]` (the worker's broker syntax)."""
    return [part.strip().split("://", 1)[-1] for part in brokers.split(",") if part.strip()]


async def main() -> None:
    servers = bootstrap_servers(os.environ.get("SEGMENTER_BROKERS", "kafka://kafka:9092"))
    customers = int(os.environ.get("SHOP_CUSTOMERS", "2000"))
    days = int(os.environ.get("SHOP_DAYS", "120"))
    rate = float(os.environ.get("SHOP_RATE", "50"))
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5)
    await producer.start()
    try:
        events = await asyncio.to_thread(history, customers, days)
        print(f"backfilling {len(events)} events of {customers} customers over {days} days", flush=True)
        await send_history(producer, events, lambda count: None)
        print(f"live traffic at about {rate:g} events/s", flush=True)
        await play_live(producer, rate, lambda count: None)
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main())
