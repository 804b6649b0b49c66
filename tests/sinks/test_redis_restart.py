"""Redis stopped in the middle of a stream and started again: nothing lost, nothing twice.

A Redis of the test's own (append-only file, fsync always) is stopped while change
events keep coming and started again with its data. While it is down, actions are
retried with backoff; if it stays down longer than the retries, they are
dead-lettered and a redrive after the restart completes them.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from sinks.deadletter import decode, encode
from sinks.registry import close_all
from sinks.retry import RetryPolicy
from streams import clean_stream, definitions, expected_state, processor_for, redis_state


async def test_redis_restart_within_the_retries(tmp_path: Path, context, prefix: str, redis_process) -> None:
    defs = definitions(tmp_path / "segments")
    context.redis_url = redis_process.url
    stream = clean_stream(customers=120, steps=12, seed=3)
    processor = processor_for(defs, context, RetryPolicy(max_retries=30, base=0.05, cap=0.4))
    outage = asyncio.Event()

    async def bounce() -> None:
        await asyncio.sleep(0.25)
        await asyncio.to_thread(redis_process.stop)
        outage.set()
        await asyncio.sleep(1.5)
        await asyncio.to_thread(redis_process.start)

    async def produce() -> list:
        dead = []
        for start in range(0, len(stream), 15):
            chunk = stream[start:start + 15]
            dead += await processor.process(orjson.dumps(change) for change in chunk)
            await asyncio.sleep(0.02)
        return dead

    dead, _ = await asyncio.gather(produce(), bounce())
    assert outage.is_set() and dead == []
    assert processor.stats.get("retries") > 0, "the outage did not hit the stream"
    assert redis_state(redis_process.url, prefix) == expected_state(defs, stream, prefix)
    actions = len(processor.deliveries(orjson.dumps(change) for change in stream))
    stats = processor.stats
    done = stats.get("deliveries", "group") + stats.get("deliveries", "pricing")
    assert done == actions  # each action answered once: applied, or found already applied after a lost reply
    await close_all(processor.dispatcher.sinks, context)


async def test_redis_down_past_the_retries_then_redrive(tmp_path: Path, context, prefix: str, redis_process) -> None:
    defs = definitions(tmp_path / "segments")
    context.redis_url = redis_process.url
    stream = clean_stream(customers=60, steps=10, seed=5)
    half = len(stream) // 2
    processor = processor_for(defs, context, RetryPolicy(max_retries=2, base=0.02))
    assert await processor.process(orjson.dumps(change) for change in stream[:half]) == []
    redis_process.stop()
    dead = await processor.process(orjson.dumps(change) for change in stream[half:])
    assert dead and all(letter.attempts == 3 for letter in dead)
    redis_process.start()
    # Through the dead-letter encoding and back, as `segmenter redrive` reads it; twice.
    letters = [decode(encode(letter)[1])[0] for letter in dead]
    for _ in range(2):
        assert await processor.dispatcher.deliver(letters) == []
    assert redis_state(redis_process.url, prefix) == expected_state(defs, stream, prefix)
    await close_all(processor.dispatcher.sinks, context)
