"""Phases 2-3: paced event-to-change latency of the worker, beside the broker's own share.

The broker's share is measured with the same sender, reader and settings: a bare
producer -> consumer pipe (one hop) and a bare relay (bench.worker.relay: the worker's
two hops with nothing in between). The embedded broker lists every stored batch of a
partition on each fetch that finds data, so its cost per fetch grows with the number
of batches written since the topic was created: a sender lingering 5 ms writes ~4
times as many batches as one lingering 20 ms, and the broker's latency grows with it
within a 30 s run. The sender's linger is therefore a parameter of every run.
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.worker.common import (
    Bench, Child, LATENCY_DEFINITIONS, PARTITIONS, Usage, at_ms, log,
    percentile, stop_task, wall_ms
)

WARMUP = 2.0  # seconds sent before the measured window (left out: connections, first fetches)
COOLDOWN = 2.0  # seconds sent after it, left out so the measured window ends in steady traffic


@dataclass
class Latency:
    sent: int
    received: int
    values: list[float]  # ms, warm-up left out
    send_lag_ms: float  # how far the sender fell behind its schedule, at worst
    late_tail_p99: float  # p99 of the last quarter of the run (a growing backlog shows here)
    linger_ms: int  # the sender's producer linger
    early: list[float] = field(default_factory=list)  # ms, the first 5 s after the warm-up (topics still small)
    usage: str = ""  # CPU use of the process under test during the run

    def summary(self) -> str:
        return (f"{self.usage}; " if self.usage else "") + (
                f"p50 {percentile(self.values, 50):.0f} ms, p99 {percentile(self.values, 99):.0f} ms, "
                f"max {max(self.values, default=float('nan')):.0f} ms; {self.received:,}/{self.sent:,} arrived; "
                f"last-quarter p99 {self.late_tail_p99:.0f} ms; sender behind by up to {self.send_lag_ms:.0f} ms")


async def send_paced(producer: AIOKafkaProducer, topic: str, total: int, rate: float,
                     make: Callable[[int, int], tuple[bytes, bytes]]) -> float:
    """Send `make(i, now_ms)` for i < total at `rate`/s and wait for the broker to take
    them all; returns how far (seconds) the sender fell behind its schedule at worst.

    The last batches are awaited with `flush()`, not `gather(*futures)`: gathering
    100,000 futures queues 100,000 callbacks ahead of the producer's own wake-up, which
    held the final batch back by most of a second and made every stream look slow at
    its end."""
    began, lag, futures = time.monotonic(), 0.0, []
    for i in range(total):
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        key, value = make(i, wall_ms())
        futures.append(await producer.send(topic, value=value, key=key))
    await producer.flush()
    for future in futures:
        future.result()  # raises if the broker refused one
    return lag


async def paced_latency(bootstrap: str, topic: str, out_topic: str, rate: float, seconds: float, linger_ms: int,
                        make: Callable[[int, int], tuple[bytes, bytes]],
                        stamp_of: Callable[[bytes], int | None]) -> Latency:
    """Send `make(i, now_ms)` at `rate`/s for WARMUP + seconds + COOLDOWN with a producer lingering
    `linger_ms`; `stamp_of(output)` gives the send time of the event an output answers (None: not
    one of ours). Outputs are read with a 10 ms fetch wait; the measured window is `seconds`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms)
    await consumer.start()
    await producer.start()
    arrivals: list[tuple[int, int]] = []  # (received ms, sent ms)

    async def read() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = wall_ms()
            for records in batch.values():
                for record in records:
                    sent = stamp_of(record.value)
                    if sent is not None and sent >= began_ms:
                        arrivals.append((now, sent))

    reader: asyncio.Task[None] | None = None
    try:
        tps = [TopicPartition(out_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        total = int(rate * (WARMUP + seconds + COOLDOWN))
        began_ms = wall_ms()
        reader = asyncio.create_task(read())
        lag = await send_paced(producer, topic, total, rate, make)
        await settle(lambda: len(arrivals), total, idle=10.0, cap=180.0)
    finally:
        await stop_task(reader)
        await producer.stop()
        await consumer.stop()
    cut, end = began_ms + WARMUP * 1000, began_ms + (WARMUP + seconds) * 1000
    kept = [(received, sent) for received, sent in arrivals if cut <= sent < end]
    tail_cut = began_ms + (WARMUP + seconds * 0.75) * 1000
    log("  by send time: " + slices([(s - began_ms, float(r - s)) for r, s in arrivals], 5000))
    return Latency(total, len(arrivals), [float(r - s) for r, s in kept], lag * 1000,
                   percentile([float(r - s) for r, s in kept if s >= tail_cut], 99), linger_ms,
                   [float(r - s) for r, s in kept if s < cut + 5000])


async def child_latency(bench: Bench, child: Child, label: str, ready: Awaitable[object], topic: str,
                        out_topic: str, rate: float, seconds: float, linger_ms: int,
                        make: Callable[[int, int], tuple[bytes, bytes]],
                        stamp_of: Callable[[bytes], int | None]) -> Latency:
    """`paced_latency` through a process under test: once `ready`, measured with its CPU use
    (`label`), checked to be still alive, and stopped afterwards whatever happens."""
    try:
        await ready
        with Usage(child.process.pid, bench.broker) as usage:
            result = await paced_latency(bench.bootstrap, topic, out_topic, rate, seconds, linger_ms, make, stamp_of)
        result.usage = usage.text(label)
        child.check()
    finally:
        child.stop()
    return result


async def settle(count: Callable[[], int], want: int, idle: float, cap: float,
                 check: Callable[[], None] | None = None) -> None:
    """Wait until count() reaches want, or stops growing for `idle` seconds, or `cap` seconds pass."""
    deadline = time.monotonic() + cap
    last, last_change = count(), time.monotonic()
    while count() < want and time.monotonic() < deadline:
        if check is not None:
            check()
        await asyncio.sleep(0.2)
        if count() != last:
            last, last_change = count(), time.monotonic()
        elif time.monotonic() - last_change > idle:
            break


def slices(points: list[tuple[float, float]], width_ms: float) -> str:
    """'0-5s n=.. p50/p99 ..' per slice of the first coordinate (ms), for the log."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for where, value in points:
        buckets[int(where // width_ms)].append(value)
    return "; ".join(f"{k * width_ms / 1000:.0f}-{(k + 1) * width_ms / 1000:.0f}s n={len(v)} "
                     f"p50 {percentile(v, 50):.0f} p99 {percentile(v, 99):.0f} ms"
                     for k, v in sorted(buckets.items()))


async def bare_pipe(bench: Bench, rate: float, seconds: float, linger_ms: int) -> Latency:
    """The broker's own share, one hop: events sent and read back from one topic, nothing in between."""
    topic = f"bench-pipe-{linger_ms}"
    await bench.create(topic)

    def make(i: int, now: int) -> tuple[bytes, bytes]:
        return f"p-{i}".encode(), orjson.dumps({"i": i, "timestamp": now})

    assert bench.broker.process is not None
    with Usage(bench.broker.process.pid, bench.broker) as usage:  # the broker alone
        result = await paced_latency(bench.bootstrap, topic, topic, rate, seconds, linger_ms, make,
                                     lambda raw: int(orjson.loads(raw)["timestamp"]))
    result.usage = usage.text("broker").rsplit(",", 1)[0]
    log(f"bare producer -> consumer at {rate:,.0f}/s, sender linger {linger_ms} ms: {result.summary()}")
    return result


def _events(prefix: str) -> tuple[Callable[[int, int], tuple[bytes, bytes]], Callable[[bytes], int | None]]:
    """Page views of a new customer each, and how to find an output's event send time."""
    marker = f"{prefix}-".encode()

    def make(i: int, now: int) -> tuple[bytes, bytes]:
        customer = f"c{prefix}-{i}"
        return customer.encode(), orjson.dumps({"event_id": f"{prefix}-{i}", "type": "page_view",
                                                "customer_id": customer, "timestamp": now})

    def stamp_of(raw: bytes) -> int | None:
        change = orjson.loads(raw)
        return at_ms(change["at"]) if change.get("cause", "").encode().startswith(marker) else None

    return make, stamp_of


async def bare_relay(bench: Bench, rate: float, seconds: float, linger_ms: int) -> Latency:
    """The broker's own share, two hops: the relay reads events and writes one record per event
    as the worker writes its changes (bench.worker.relay), nothing evaluated."""
    name = f"bench-relay-{linger_ms}"
    source, output = f"{name}-events", f"{name}-changes"
    await bench.create(source, output)
    relay = Child(name, [sys.executable, "-m", "bench.worker.relay", bench.bootstrap, source, output], {},
                  bench.workdir / f"{name}.log")
    make, stamp_of = _events(name)
    result = await child_latency(bench, relay, "relay", relay.wait_line("relay ready", 120), source, output,
                                 rate, seconds, linger_ms, make, stamp_of)
    log(f"bare relay at {rate:,.0f}/s, sender linger {linger_ms} ms: {result.summary()}")
    return result


async def worker_latency(bench: Bench, run: int, rate: float, seconds: float, linger_ms: int) -> Latency:
    name = f"bench-latency-{linger_ms}-{run}"
    segments = bench.workdir / name / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    (segments / "latency.yaml").write_text(LATENCY_DEFINITIONS)
    settings = bench.settings(name, segments, [f"{name}-events"])
    worker = await bench.start_worker(settings)
    make, stamp_of = _events(name)
    result = await child_latency(bench, worker, "worker", worker.wait_line("segmenter worker ready", 120),
                                 settings.topics[0], settings.changes_topic, rate, seconds, linger_ms, make, stamp_of)
    log(f"worker latency run {run} at {rate:,.0f}/s, sender linger {linger_ms} ms: {result.summary()}")
    return result
