"""Phase 4: timer lateness, with the input idle and while busy."""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.settings import Settings
from bench.worker.common import (
    Bench, Child, IDLE_MS, PARTITIONS, TIMER_DEFINITIONS, at_ms, log, percentile, stop_task, wall_ms
)
from bench.worker.latency import send_paced, settle, slices
from bench.worker.producing import produce_batched


@dataclass
class Timers:
    customers: int
    enters: int
    exits: int
    lateness: list[float]  # ms, every exit
    steady: list[float]  # ms, exits due once the worker had taken in every ping and its input had gone idle
    ingest_seconds: float  # from the first ping sent to the last enter received


def _ping(i: int, customer: str, stamp: int) -> bytes:
    return orjson.dumps({"event_id": f"ping-{i}", "type": "ping", "customer_id": customer, "timestamp": stamp})


async def start_timer_worker(bench: Bench, name: str, window_s: int) -> tuple[Settings, Child]:
    """A worker with `since(last(ping)) < window` as its only segment."""
    segments = bench.workdir / name / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    (segments / "timers.yaml").write_text(TIMER_DEFINITIONS.format(window=f"{window_s}s"))
    settings = bench.settings(name, segments, [f"{name}-events"])
    return settings, await bench.start_worker(settings)


async def collect_timer_changes(consumer: AIOKafkaConsumer, enters: dict[str, int],
                                exits: dict[str, tuple[int, int]]) -> None:
    """Receive time of each customer's enter, and of its timer exit with the exit's `at`."""
    while True:
        batch = await consumer.getmany(timeout_ms=100)
        now = wall_ms()
        for records in batch.values():
            for record in records:
                change = orjson.loads(record.value)
                if change["cause"] == "timer":
                    exits.setdefault(change["customer_id"], (now, at_ms(change["at"])))
                else:
                    enters.setdefault(change["customer_id"], now)


async def timer_lateness(bench: Bench, customers: int, window_s: int) -> Timers:
    settings, worker = await start_timer_worker(bench, "bench-timers", window_s)
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    enters: dict[str, int] = {}  # customer -> received ms
    exits: dict[str, tuple[int, int]] = {}  # customer -> (received ms, at ms)
    reader: asyncio.Task[None] | None = None

    try:
        await worker.wait_line("segmenter worker ready", 120)
        await consumer.start()
        tps = [TopicPartition(settings.changes_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reader = asyncio.create_task(collect_timer_changes(consumer, enters, exits))
        rng = random.Random(5)
        started = wall_ms()
        messages: list[tuple[str, bytes | None, bytes]] = []
        for i in range(customers):
            customer = f"t-{i}"
            stamp = wall_ms() - rng.randint(0, window_s * 1000 - 1)
            messages.append((settings.topics[0], customer.encode(), _ping(i, customer, stamp)))
        await produce_batched(bench.bootstrap, messages)
        log(f"timers: {customers:,} pings produced in {(wall_ms() - started) / 1000:.1f}s")
        await asyncio.sleep(window_s)  # every exit is due by now
        await settle(lambda: len(exits) + len(enters), 2 * customers, idle=15.0, cap=600.0, check=worker.check)
    finally:
        await stop_task(reader)
        await consumer.stop()
        worker.stop()
    caught_up = max(enters.values(), default=started)
    lateness = [float(received - at) for received, at in exits.values()]
    steady = [float(received - at) for received, at in exits.values() if at > caught_up + IDLE_MS]
    result = Timers(customers, len(enters), len(exits), lateness, steady, (caught_up - started) / 1000)
    log("  by due time: " + slices([(at - started, float(received - at)) for received, at in exits.values()],
                                   window_s * 1000 / 6))
    log(f"timers: {result.exits:,}/{customers:,} exits ({result.enters:,} enters, all taken in after "
        f"{result.ingest_seconds:.1f}s = {customers / max(result.ingest_seconds, 1e-3):,.0f} pings/s); "
        f"lateness p50 {percentile(lateness, 50):.0f} ms, p99 "
        f"{percentile(lateness, 99):.0f} ms, max {max(lateness, default=float('nan')):.0f} ms; due over "
        f"{IDLE_MS} ms after intake ({len(steady):,}): p50 {percentile(steady, 50):.0f} ms, "
        f"p99 {percentile(steady, 99):.0f} ms, "
        f"max {max(steady, default=float('nan')):.0f} ms")
    return result


async def timer_lateness_busy(bench: Bench, customers: int, window_s: int, rate: float) -> Timers:
    """Exits that fall due while the worker is busy: pings sent live at `rate`/s, each
    stamped with its send time, so every membership expires `window_s` after its ping
    while later pings are still arriving. `steady` holds the exits due while pings
    were being sent (the busy part); `lateness` all of them."""
    settings, worker = await start_timer_worker(bench, "bench-timers-busy", window_s)
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    producer = AIOKafkaProducer(bootstrap_servers=bench.bootstrap, linger_ms=5)
    enters: dict[str, int] = {}
    exits: dict[str, tuple[int, int]] = {}
    reader: asyncio.Task[None] | None = None

    try:
        await worker.wait_line("segmenter worker ready", 120)
        await consumer.start()
        await producer.start()
        tps = [TopicPartition(settings.changes_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reader = asyncio.create_task(collect_timer_changes(consumer, enters, exits))
        started = wall_ms()

        def ping(i: int, now: int) -> tuple[bytes, bytes]:
            customer = f"b-{i}"
            return customer.encode(), _ping(i, customer, now)

        await send_paced(producer, settings.topics[0], customers, rate, ping)
        last_sent = wall_ms()
        await asyncio.sleep(window_s)
        await settle(lambda: len(exits) + len(enters), 2 * customers, idle=15.0, cap=600.0, check=worker.check)
    finally:
        await stop_task(reader)
        await producer.stop()
        await consumer.stop()
        worker.stop()
    lateness = [float(received - at) for received, at in exits.values()]
    busy = [float(received - at) for received, at in exits.values() if at <= last_sent]
    log("  by due time: " + slices([(at - started, float(received - at)) for received, at in exits.values()], 10_000))
    log(f"timers while busy: {len(exits):,}/{customers:,} exits; due while pings still arrived ({len(busy):,}): "
        f"p50 {percentile(busy, 50):.0f} ms, p99 {percentile(busy, 99):.0f} ms; all: p99 {percentile(lateness, 99):.0f} ms")
    return Timers(customers, len(enters), len(exits), lateness, busy, (last_sent - started) / 1000)
