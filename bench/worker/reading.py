"""Reading back: the bare consume loop (the reference), change summaries and the last writes of a worker."""
from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.worker.common import Bench, PARTITIONS, log


async def bare_loop(bench: Bench) -> float:
    """Seconds for a bare consumer (getmany + orjson.loads) to read all pre-produced events."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = list(bench.ends)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        want, seen, usable = bench.total, 0, 0
        started = time.perf_counter()
        while seen < want:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    seen += 1
                    try:
                        usable += type(orjson.loads(record.value)) is dict
                    except orjson.JSONDecodeError:
                        pass
            if time.perf_counter() - started > 300:
                raise TimeoutError(f"bare loop read {seen:,} of {want:,} events")
        seconds = time.perf_counter() - started
        for tp, end in bench.ends.items():
            high = consumer.highwater(tp)
            if high is not None and high != end:
                log(f"warning: {tp.topic}[{tp.partition}] high watermark {high} != {end} produced")
        return seconds
    finally:
        await consumer.stop()


async def change_summary(bootstrap: str, topic: str) -> dict[str, int]:
    """Read a changes topic whole: changes by cause, re-sent duplicates, memberships at the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    seen: set[tuple[str, str, int]] = set()
    timer = duplicates = 0
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        pending, deadline = set(tps), time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    change = orjson.loads(record.value)
                    ident = (change["customer_id"], change["segment"], change["seq"])
                    if ident in seen:
                        duplicates += 1
                        continue
                    seen.add(ident)
                    timer += change["cause"] == "timer"
                    pair = ident[:2]
                    if pair not in latest or latest[pair][0] < ident[2]:
                        latest[pair] = (ident[2], change["change"])
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None and await consumer.position(tp) >= high:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    members = sum(1 for _, kind in latest.values() if kind == "enter")
    return {"distinct": len(seen), "timer": timer, "duplicates": duplicates, "members": members}


async def last_writes(bootstrap: str, topics: list[str]) -> tuple[int, dict[str, int]]:
    """(greatest record timestamp in ms, messages per topic) over `topics`, reading only their tails."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)  # at worst the start of each partition's last batch
        best, pending = 0, set(tps)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                best = max([best, *(r.timestamp for r in records)])
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None and await consumer.position(tp) >= high:
                    pending.discard(tp)
        counts = {t: sum(consumer.highwater(TopicPartition(t, p)) or 0 for p in range(PARTITIONS)) for t in topics}
        return best, counts
    finally:
        await consumer.stop()
