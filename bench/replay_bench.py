"""Replay throughput beside a bare loop, on one core.

    python -m bench.replay_bench [--events 1000000] [--customers 100000] [--runs 3]

Generates the events once (cached under /tmp), then alternates runs, each in a fresh
process, of
  * the bare loop: read lines, `orjson.loads`, one dict update per event;
  * replay: parse and validate every event, sort by event time, evaluate with the
    example definitions (examples/segments), time-based flips included;
and prints the medians, the ratio, and the state size per customer (the encoded
bytes a table stores, and the in-memory bytes measured with tracemalloc on a sample).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson

from examples.traffic import TrafficConfig, write_jsonl
from rules import Engine, load_definitions
from stream.eventfile import load_events
from stream.gcpause import collector_paused
from stream.replay import replay

SEGMENTS = Path(__file__).parents[1] / "examples" / "segments"
T = TypeVar("T")


def bare_loop(path: Path) -> float:
    started = time.perf_counter()
    counts: dict[object, int] = {}
    with path.open("rb") as handle:
        for line in handle:
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(data) is dict:
                key = data.get("customer_id")
                counts[key] = counts.get(key, 0) + 1
    return time.perf_counter() - started


def fresh(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a new interpreter, as a replay runs from the command line:
    runs in one process slow down one after the other (the run before leaves the heap
    fragmented), 170,000 then 133,000 then 125,000 events/s on the same code."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def measured_replay(path: Path) -> tuple[float, int, int, float]:
    """(seconds, changes, customers, encoded bytes per customer) of one full replay."""
    seconds, engine, changes = full_replay(path)
    states = list(engine.states.values())
    encoded = [len(state.to_bytes()) for state in states[::max(1, len(states) // 20_000)]]  # spread over all
    return seconds, changes, len(engine.customers()), statistics.mean(encoded)


def full_replay(path: Path) -> tuple[float, Engine, int]:
    """What `segmenter replay` does, minus writing output files."""
    started = time.perf_counter()
    changes = 0

    def count(_: object) -> None:
        nonlocal changes
        changes += 1

    with collector_paused():
        engine = Engine(load_definitions(SEGMENTS))
        loaded = load_events(path, read_properties=engine.program.property_readers)
        replay(engine, loaded.events, count)
    return time.perf_counter() - started, engine, changes


def memory_per_customer(path: Path, sample_lines: int) -> float:
    sample = path.with_suffix(".sample.jsonl")
    with path.open("rb") as source, sample.open("wb") as out:
        for index, line in enumerate(source):
            if index >= sample_lines:
                break
            out.write(line)
    engine = Engine(load_definitions(SEGMENTS))
    loaded = load_events(sample, read_properties=engine.program.property_readers)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    replay(engine, loaded.events, lambda _: None)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / max(1, len(engine.states))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("/tmp/segmenter-bench"))
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    args.data.mkdir(parents=True, exist_ok=True)
    path = args.data / f"events-{args.customers}c-{args.events}.jsonl"
    if not path.exists():
        print(f"generating {args.events:,} events of {args.customers:,} customers -> {path}")
        days = 400 * args.events / (args.customers * 16)  # keep ~16 events per customer-400d
        config = TrafficConfig(customers=args.customers, days=max(30.0, min(days, 400.0)))
        written = write_jsonl(path, config, progress=True, limit=args.events)
        print(f"wrote {written:,} events")
    lines = sum(1 for _ in path.open("rb"))
    bare, full = [], []
    changes = customers = 0
    encoded = 0.0
    for run in range(args.runs):  # each measure in a fresh process, as a replay from the command line runs
        bare.append(fresh(bare_loop, path))
        seconds, changes, customers, encoded = fresh(measured_replay, path)
        full.append(seconds)
        print(f"run {run + 1}: bare {lines / bare[-1]:,.0f} events/s, replay {lines / seconds:,.0f} events/s")
    bare_rate = lines / statistics.median(bare)
    replay_rate = lines / statistics.median(full)
    in_memory = memory_per_customer(path, min(lines, 200_000))
    print()
    print("| measure | median |")
    print("|---|---|")
    print(f"| events | {lines:,} ({customers:,} customers, {changes:,} changes) |")
    print(f"| bare loop (orjson.loads + dict update) | {bare_rate:,.0f} events/s |")
    print(f"| replay, example definitions | {replay_rate:,.0f} events/s |")
    ratios = [b / f for b, f in zip(bare, full)]  # the machine's speed drifts between runs: compare within each
    print(f"| replay / bare loop (median of the runs' own ratios) | {statistics.median(ratios):.1%} "
          f"({', '.join(f'{r:.1%}' for r in ratios)}) |")
    print(f"| state per customer, encoded (table value, MessagePack) | {encoded:,.0f} bytes |")
    print(f"| state per customer, in memory | {in_memory:,.0f} bytes |")


if __name__ == "__main__":
    main()
