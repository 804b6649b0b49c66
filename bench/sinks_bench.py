"""Group updates per second into Redis from one sinks process, with pipelining.

    python -m bench.sinks_bench [--changes 200000] [--batch 1000] [--runs 3] [--redis-url URL]

Builds change events for `loyalty` (on_enter: group add, on_exit: group remove) as
the worker publishes them (JSON bytes, customers entering and some leaving again),
then feeds them through the sinks' own path, `ChangeProcessor` in rounds of
`--batch` messages as `segmenter sinks` takes them from Kafka: decode, find the
actions, one seq-guarded Lua script per update, the round's scripts pipelined in one
round trip. Kafka itself is left out (it is the worker benchmark's subject). Each run
writes under a fresh key prefix, removed afterwards; prints each run and the median.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import redis as sync_redis

from rules import load_definitions
from sinks.context import SinkContext
from sinks.dispatch import Dispatcher
from sinks.environment import resolve_destinations
from sinks.processor import ChangeProcessor
from sinks.registry import build_sinks, close_all
from sinks.retry import RetryPolicy
from sinks.stats import SinkStats

SEGMENTS = """
segments:
  loyalty:
    when: lifetime_spend > 1000
    on_enter: [{group: {add: loyalty}}]
    on_exit: [{group: {remove: loyalty}}]
traits:
  lifetime_spend: sum(order_placed.total)
destinations:
  group: {type: redis}
"""


def changes(count: int) -> list[bytes]:
    """`count` changes: customers enter, every fourth leaves again (seq 2)."""
    out: list[bytes] = []
    number = 0
    while len(out) < count:
        customer = f"c-{number:07d}"
        for seq in (1, 2) if number % 4 == 0 else (1,):
            out.append(orjson.dumps({"customer_id": customer, "segment": "loyalty", "change": "enter" if seq == 1 else "exit",
                                     "seq": seq, "at": "2026-11-20T10:00:00Z", "cause": f"e-{number}",
                                     "holdout": False, "definition": "bench"}))
        number += 1
    return out[:count]


async def one_run(messages: list[bytes], batch: int, redis_url: str, folder: Path) -> float:
    definitions = load_definitions(folder)
    prefix = f"bench-sinks-{uuid.uuid4().hex[:8]}:"
    context = SinkContext(redis_url=redis_url, redis_prefix=prefix)
    stats = SinkStats()
    sinks = build_sinks(resolve_destinations(definitions, {}), context)
    processor = ChangeProcessor(definitions, Dispatcher(sinks, RetryPolicy(0), stats), stats)
    try:
        await processor.process(messages[:10])  # connect and load the script
        started = time.perf_counter()
        for start in range(10, len(messages), batch):
            dead = await processor.process(messages[start:start + batch])
            if dead:
                raise RuntimeError(f"{len(dead)} updates failed: {dead[0].error}")
        elapsed = time.perf_counter() - started
        if stats.get("deliveries", "group", "applied") != len(messages):
            raise RuntimeError(f"applied {stats.get('deliveries', 'group', 'applied')} of {len(messages)}")
        return (len(messages) - 10) / elapsed
    finally:
        await close_all(sinks, context)
        client = sync_redis.Redis.from_url(redis_url)
        for keys in _chunks(list(client.scan_iter(match=prefix + "*", count=10_000)), 10_000):
            client.delete(*keys)
        client.close()


def _chunks(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    messages = changes(args.changes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "segments.yaml").write_text(SEGMENTS)
        rates = []
        for run in range(1, args.runs + 1):
            rate = asyncio.run(one_run(messages, args.batch, args.redis_url, folder))
            rates.append(rate)
            print(f"run {run}: {rate:,.0f} group updates/s")
    print(f"median of {args.runs}: {statistics.median(rates):,.0f} group updates/s "
          f"({args.changes:,} changes, rounds of {args.batch}, one Lua script per update, pipelined)")


if __name__ == "__main__":
    main()
