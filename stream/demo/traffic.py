"""Shop traffic for the demo: a quick backfill of recent history, then live events.

Both come from `examples.traffic`. Live events are played faster than the shop's own
time (so a minute shows an hour of shopping) and stamped with the wall clock when
sent, so the worker sees them as happening now.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import orjson
from aiokafka import AIOKafkaProducer

from examples.traffic import TrafficConfig, generate, key_of

TOPIC_BY_TYPE = {"order_placed": "orders", "order_refunded": "orders", "customer_created": "customers",
                 "customer_updated": "customers", "identify": "customers"}


def topic_for(raw: bytes) -> str:
    try:
        kind = orjson.loads(raw).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return "behavior"
    return TOPIC_BY_TYPE.get(kind, "behavior") if isinstance(kind, str) else "behavior"


def history(customers: int, days: int) -> list[bytes]:
    start = datetime.now(timezone.utc) - timedelta(days=days)
    return list(generate(TrafficConfig(customers=customers, days=days, start=start, seed=11)))


def _restamp(raw: bytes, now_ms: int) -> bytes:
    """Stamp an event with the wall clock and give its ids a live- prefix."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(event, dict):
        return raw
    event["timestamp"] = now_ms
    for name in ("customer_id", "anonymous_id", "event_id"):
        if isinstance(event.get(name), str):
            event[name] = "live-" + event[name]
    return orjson.dumps(event)


async def send_history(producer: AIOKafkaProducer, events: list[bytes], on_sent: Callable[[int], None]) -> None:
    pending = []
    for raw in events:
        pending.append(await producer.send(topic_for(raw), value=raw, key=key_of(raw)))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            on_sent(len(pending))
            pending = []
    await asyncio.gather(*pending)
    on_sent(len(pending))


async def play_live(producer: AIOKafkaProducer, rate: float, on_sent: Callable[[int], None]) -> None:
    """Live shop traffic at about `rate` events per second, until cancelled."""
    round_number = 0
    while True:
        start = datetime.now(timezone.utc)
        config = TrafficConfig(customers=3000, days=10, start=start, seed=100 + round_number)
        events = [(ts, raw) for raw in generate(config) if (ts := _event_ms(raw)) is not None]
        if not events:
            return
        first = events[0][0]
        span = max(1, events[-1][0] - first)
        speed = span / 1000 / (len(events) / rate)  # shop seconds per wall second
        began = time.monotonic()
        for ts, raw in events:
            due = began + (ts - first) / 1000 / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stamped = _restamp(raw, int(time.time() * 1000))
            await producer.send(topic_for(raw), value=stamped, key=key_of(stamped))
            on_sent(1)
        round_number += 1


def _event_ms(raw: bytes) -> int | None:
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    stamp = event.get("timestamp") if isinstance(event, dict) else None
    if isinstance(stamp, int):
        return stamp
    if isinstance(stamp, str):
        try:
            return int(datetime.fromisoformat(stamp).timestamp() * 1000)
        except ValueError:
            return None
    return None
