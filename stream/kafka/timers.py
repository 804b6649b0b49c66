"""Per-partition index of the next time-based flip of every customer a worker owns.

Rebuilt from the table whenever partitions are assigned (the index belongs to the
partition, the table is the truth); stale entries are harmless because firing checks
the customer's current wake-up time.

Flips of a partition fire up to its watermark: the greatest event time it has
processed, or the wall clock once it has been idle for a moment. Live, event times
follow the wall clock closely, so flips fire on time; while a partition works through
a backlog or a backfill, its flips fire in event time among its events, so a
customer's clock never runs ahead of events still queued for it, and the change
stream is the one replay gives.
"""
from __future__ import annotations

import heapq
import time

IDLE_MS = 1_000
"""A partition with no input for this long has caught up: its flips follow the wall clock."""


class TimerIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._latest: dict[str, int] = {}
        self._progress: dict[int, tuple[int, float]] = {}  # partition -> (max event ts, last input at)

    def __len__(self) -> int:
        return len(self._latest)

    def schedule(self, key: str, partition: int, instant: int | None) -> None:
        if instant is None:
            self._latest.pop(key, None)
            return
        if self._latest.get(key) == instant:
            return
        self._latest[key] = instant
        heapq.heappush(self._heaps.setdefault(partition, []), (instant, key))

    def observe(self, partition: int, event_ts: int) -> None:
        """Record input progress of a partition."""
        previous = self._progress.get(partition)
        self._progress[partition] = (max(event_ts, previous[0]) if previous else event_ts, time.monotonic())

    def mark_idle(self) -> None:
        """Treat every partition as caught up (all input processed)."""
        self._progress.clear()

    def horizon(self, partition: int, wall_ms: int) -> int:
        """The watermark of `partition`: how far its flips may fire now."""
        progress = self._progress.get(partition)
        if progress is None or (time.monotonic() - progress[1]) * 1000 >= IDLE_MS:
            return wall_ms
        return min(progress[0], wall_ms)

    def _clean(self, heap: list[tuple[int, str]]) -> None:
        while heap and self._latest.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # superseded entry

    def next_instant(self) -> int | None:
        """The earliest scheduled flip on any partition (horizons not applied)."""
        best: int | None = None
        for heap in self._heaps.values():
            self._clean(heap)
            if heap and (best is None or heap[0][0] < best):
                best = heap[0][0]
        return best

    def pop_due(self, wall_ms: int, limit: int = 10_000) -> list[tuple[str, int, int, int]]:
        """(key, partition, instant, horizon) of flips due up to each partition's horizon."""
        due: list[tuple[str, int, int, int]] = []
        for partition, heap in self._heaps.items():
            until = self.horizon(partition, wall_ms)
            while heap and heap[0][0] <= until and len(due) < limit:
                instant, key = heapq.heappop(heap)
                if self._latest.get(key) == instant:
                    del self._latest[key]
                    due.append((key, partition, instant, until))
        due.sort(key=lambda item: item[2])
        return due

    def keep_partitions(self, partitions: set[int]) -> None:
        self._heaps = {p: h for p, h in self._heaps.items() if p in partitions}
        keys = {key for heap in self._heaps.values() for _, key in heap}
        self._latest = {k: v for k, v in self._latest.items() if k in keys}
