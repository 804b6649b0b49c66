"""A/B of the worker's throughput between two checkouts, on one embedded broker.

    python -m bench.worker_ab OLD_TREE NEW_TREE [--runs 4] [--store rocksdb://] [--events 200000]

Makes a worktree for each side first (`git worktree add /tmp/old <commit>`). The
events are produced once; then each run times the bare loop and one worker of each
tree (phase 1 of `bench.worker_bench`), the order of the two trees alternating from
run to run, so a machine getting slower or faster during the runs weighs on both
alike. Prints each side's medians: events/s to the last state write and to committed
offsets, and worker CPU seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import bench.worker.common as common
from bench.worker.common import Bench, Child, log
from bench.worker.producing import pre_produce
from bench.worker.reading import bare_loop
from bench.worker.throughput import worker_rate
from stream.broker import EmbeddedBroker


async def compare(bench: Bench, trees: dict[str, Path], args: argparse.Namespace) -> dict[str, list[tuple[float, float, float]]]:
    await pre_produce(bench, args.events)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    for run in range(args.runs):
        log(f"bare loop {bench.total / await bare_loop(bench):,.0f} events/s")
        order = list(trees) if run % 2 == 0 else list(reversed(trees))
        for side, name in enumerate(order):
            common.REPO = trees[name]  # the worker process runs from this tree
            result = await worker_rate(bench, 100 * (run + 1) + side, store=args.store)
            results[name].append((result["rate"], result["rate_committed"], result["cpu_worker"]))
            log(f"{name}: {result['rate']:,.0f} events/s to the last write, {result['rate_committed']:,.0f} "
                f"to committed offsets, CPU {result['cpu_worker']:.1f} s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--store", default="rocksdb://")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    workdir = Path(tempfile.mkdtemp(prefix="segmenter-worker-ab-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    try:
        broker.start()
        results = asyncio.run(compare(Bench(broker, workdir), trees, args))
    finally:
        Child.stop_all()
        broker.stop()
    for name, rows in results.items():
        write, committed, cpu = (statistics.median(column) for column in zip(*rows))
        print(f"{name} ({trees[name]}): {write:,.0f} events/s to the last write, {committed:,.0f} to committed "
              f"offsets, worker CPU {cpu:.2f} s (medians of {len(rows)})")


if __name__ == "__main__":
    main()
