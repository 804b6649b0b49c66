"""Phase 5: the naive Faust agent (bench/naive_faust.py): its rate and latency."""
from __future__ import annotations

import itertools
import sys
import time
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.worker.common import Bench, Child, INPUTS, PARTITIONS, log, wall_ms
from bench.worker.latency import Latency, child_latency

NAIVE_SENDER_LINGER_MS = 5  # as in the measurements the naive agent is compared with


def naive_faust(bench: Bench, name: str, topics: list[str], output: str, defaults: bool, expect: int = 0) -> Child:
    argv = [sys.executable, "-m", "bench.naive_faust", "--broker", bench.broker.url, "--app-id", name,
            "--topics", ",".join(topics), "--output", output, "--partitions", str(PARTITIONS)]
    if expect:
        argv += ["--expect", str(expect)]
    if defaults:
        argv.append("--defaults")
    return Child(name, argv, {}, bench.workdir / f"{name}.log")


async def faust_rate(bench: Bench, defaults: bool, events: int) -> dict[str, float]:
    name = f"naive-rate-{'defaults' if defaults else 'fixed'}"
    await bench.create(f"{name}-out", f"{name}-spend-changelog")
    expect = min(events, bench.total)
    app = naive_faust(bench, name, INPUTS, f"{name}-out", defaults, expect)
    try:
        started = time.monotonic()
        await app.wait_line("naive faust first event", 180)
        joined = time.monotonic() - started
        cpu = app.cpu()
        _, line = await app.wait_line("naive faust done", 60 + expect / 300)
        cpu = app.cpu() - cpu
    finally:
        app.stop()
    seconds = float(line.split()[-2])
    result = {"rate": expect / seconds, "events": expect, "cpu": cpu, "join": joined}
    log(f"naive Faust ({'defaults' if defaults else 'adjusted'}): {expect:,} events in {seconds:.1f}s = "
        f"{result['rate']:,.0f}/s, CPU {cpu:.1f}s; first event {joined:.1f}s after start")
    return result


async def faust_latency(bench: Bench, defaults: bool, rate: float, seconds: float) -> Latency:
    name = f"naive-latency-{'defaults' if defaults else 'fixed'}"
    source, output = f"{name}-in", f"{name}-out"
    await bench.create(source, output, f"{name}-spend-changelog")
    app = naive_faust(bench, name, [source], output, defaults)

    def order(event_id: str, customer: str, now: int) -> tuple[bytes, bytes]:
        return customer.encode(), orjson.dumps({"event_id": event_id, "type": "order_placed", "customer_id": customer,
                                                "timestamp": now, "properties": {"total": 1500.0}})

    def stamp_of(raw: bytes) -> int | None:
        crossed = orjson.loads(raw)
        return int(crossed["timestamp"]) if str(crossed.get("event_id", "")).startswith("n-") else None

    ready = warm_up(bench.bootstrap, source, output, app, lambda k, now: order(f"probe-{k}", f"probe-{k}", now))
    result = await child_latency(bench, app, "Faust app", ready, source, output, rate, seconds, NAIVE_SENDER_LINGER_MS,
                                 lambda i, now: order(f"n-{i}", f"nc-{i}", now), stamp_of)
    log(f"naive Faust ({'defaults' if defaults else 'adjusted'}) latency at {rate:,.0f}/s: {result.summary()}")
    return result


async def warm_up(bootstrap: str, topic: str, output: str, app: Child, make: Callable[[int, int], tuple[bytes, bytes]],
                  timeout: float = 180.0) -> None:
    """Send a probe every 250 ms until the app answers one (it has joined and is processing)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await producer.start()
    await consumer.start()
    try:
        tps = [TopicPartition(output, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        for k in itertools.count():
            key, value = make(k, wall_ms())
            await producer.send_and_wait(topic, value=value, key=key)
            if await consumer.getmany(timeout_ms=250):
                return
            app.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{app.name} did not answer within {timeout:.0f}s; see {app.log_path}")
    finally:
        await producer.stop()
        await consumer.stop()
