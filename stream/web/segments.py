"""`GET /segments`: size and share of every segment over all workers.

Each worker counts the customers and members of its own partitions; the worker asked
adds up every worker's counts and checks that together they cover every partition
once, so a total is never silently missing a partition (during a rebalance the answer
is 503 instead).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stream.kafka import faustfixes

if TYPE_CHECKING:
    from stream.kafka.app import SegmenterApp


def local_counts(worker: SegmenterApp) -> dict[str, Any]:
    counts = worker.metrics.counts
    return {
        "partitions": sorted(faustfixes.held_partitions(worker.app, worker.settings.repartition_topic)),
        "customers": counts.customers,
        "members": counts.sizes(sorted(worker.engine.definitions.segments)),
    }


class Incomplete(Exception):
    """The workers' counts do not cover every partition exactly once."""


def combine(parts: list[dict[str, Any]], partitions: int, segments: list[str]) -> dict[str, Any]:
    covered = sorted(p for part in parts for p in part["partitions"])
    if covered != list(range(partitions)):
        raise Incomplete(f"workers hold partitions {covered}, expected each of 0..{partitions - 1} once")
    customers = sum(int(part["customers"]) for part in parts)
    sizes = {name: sum(int(part["members"].get(name, 0)) for part in parts) for name in segments}
    return {
        "customers": customers,
        "workers": len(parts),
        "segments": {name: {"size": size, "share": round(size / customers, 6) if customers else 0.0}
                     for name, size in sizes.items()},
    }
