"""Per-partition index of the next time-based flip of every customer a worker owns.

Rebuilt from the table whenever partitions are assigned (the index belongs to the
partition, the table is the truth); stale entries are harmless because firing checks
the customer's current wake-up time.

Flips of a partition fire up to its watermark: the smallest, over the topics feeding
that partition (the inputs and the repartition topic), of the greatest event time
processed from it. A topic-partition counts as caught up, and lets flips follow the
wall clock, once it has had no input for `IDLE_MS` and its next offset to process has
reached its high watermark as the last fetch reported it (the quiet moment covers a
producer still sending: the last fetch cannot know of messages not yet written). One
that has delivered nothing since assignment starts from its committed offset; until
the first fetch answers, its flips wait, so after a restart or a rebalance a flip that
is already due by the wall clock does not overtake the backlog still queued for it.
Watching the repartition topic too keeps flips from overtaking forwarded events still
in flight. Live, event times follow the wall clock closely, so flips fire on time;
while a partition works through a backlog or a backfill, its flips fire in event time
among its events, so a customer's clock never runs ahead of events still queued for it,
and the change stream is the one replay gives.

Without a consumer to ask (the in-memory test bus), the quiet moment alone decides.
"""
from __future__ import annotations

import heapq
import time
from collections.abc import Callable

IDLE_MS = 500
"""A topic-partition is caught up only after this long without input (see above)."""

OffsetOf = Callable[[str, int], "int | None"]


class TimerIndex:
    def __init__(self, topics: tuple[str, ...] = (),
                 highwater: OffsetOf | None = None, start: OffsetOf | None = None) -> None:
        # per partition: a heap of distinct instants and the keys due at each (plain
        # integers in the heap compare much faster than (instant, key) tuples)
        self._heaps: dict[int, list[int]] = {}
        self._keys: dict[int, dict[int, list[str]]] = {}
        self._latest: dict[str, int] = {}  # key -> the instant it is due (older entries are stale)
        self.topics = topics
        self.highwater = highwater  # end offset of a topic-partition, as last fetched
        self.start = start  # where reading resumes after assignment: the committed offset
        # (topic, partition) -> (max event ts or None, next offset or None, last input or assignment at)
        self._progress: dict[tuple[str, int], tuple[int | None, int | None, float]] = {}

    def __len__(self) -> int:
        return len(self._latest)

    def schedule(self, key: str, partition: int, instant: int | None) -> None:
        if instant is None:
            self._latest.pop(key, None)
            return
        if self._latest.get(key) == instant:
            return
        self._latest[key] = instant
        buckets = self._keys.setdefault(partition, {})
        keys = buckets.get(instant)
        if keys is None:
            buckets[instant] = [key]
            heapq.heappush(self._heaps.setdefault(partition, []), instant)
        else:
            keys.append(key)

    def assigned(self, partitions: set[int]) -> None:
        """Partitions (re)assigned: hold their flips until input shows where they stand."""
        now = time.monotonic()
        for partition in partitions:
            for topic in self.topics:
                self._progress[(topic, partition)] = (None, None, now)

    def observe(self, topic: str, partition: int, event_ts: int | None, offset: int | None = None) -> None:
        """Record input progress of a topic-partition: an event (its time and offset), or
        with `event_ts` None a message that carried no usable time (a dead letter)."""
        previous = self._progress.get((topic, partition))
        if previous is None or previous[0] is None:
            best = event_ts
        else:
            best = previous[0] if event_ts is None else max(event_ts, previous[0])
        self._progress[(topic, partition)] = (best, None if offset is None else offset + 1, time.monotonic())

    def _caught_up(self, topic: str, partition: int, progress: tuple[int | None, int | None, float],
                   now: float) -> bool:
        _, next_offset, since = progress
        if (now - since) * 1000 < IDLE_MS:
            return False  # input (or the assignment) just now: more may be on its way
        if self.highwater is None:
            return True
        end = self.highwater(topic, partition)
        if end is None:
            return False  # not fetched yet: the backlog may be anything
        if next_offset is None:
            next_offset = (self.start(topic, partition) if self.start is not None else None) or 0
        return next_offset >= end

    def mark_idle(self) -> None:
        """Treat every partition as caught up (all input processed)."""
        self._progress.clear()

    def horizon(self, partition: int, wall_ms: int) -> int:
        """The watermark of `partition`: how far its flips may fire now."""
        now = time.monotonic()
        horizon = wall_ms
        for topic in self.topics or (None,):
            progress = self._progress.get((topic, partition))  # type: ignore[arg-type]
            if progress is None or self._caught_up(topic, partition, progress, now):  # type: ignore[arg-type]
                continue
            if progress[0] is None:
                return -1  # assigned, nothing read yet
            horizon = min(horizon, progress[0])
        return horizon

    def _clean(self, partition: int) -> None:
        """Drop instants at the top of the heap whose keys are all superseded."""
        heap, buckets, latest = self._heaps[partition], self._keys[partition], self._latest
        while heap:
            instant = heap[0]
            if any(latest.get(key) == instant for key in buckets[instant]):
                return
            heapq.heappop(heap)
            del buckets[instant]

    def next_instant(self) -> int | None:
        """The earliest scheduled flip on any partition (horizons not applied)."""
        best: int | None = None
        for partition, heap in self._heaps.items():
            self._clean(partition)
            if heap and (best is None or heap[0] < best):
                best = heap[0]
        return best

    def pop_due(self, wall_ms: int, limit: int = 10_000) -> list[tuple[str, int, int, int]]:
        """(key, partition, instant, horizon) of flips due up to each partition's horizon,
        earliest first (keys due at the same instant in the order they were scheduled)."""
        due: list[tuple[str, int, int, int]] = []
        latest = self._latest
        for partition, heap in self._heaps.items():
            until = self.horizon(partition, wall_ms)
            buckets = self._keys[partition]
            while heap and heap[0] <= until and len(due) < limit:
                instant = heap[0]
                keys = buckets[instant]
                taken = 0
                for key in keys:
                    taken += 1
                    if latest.get(key) == instant:  # else superseded: skip it
                        del latest[key]
                        due.append((key, partition, instant, until))
                        if len(due) >= limit:
                            break
                if taken < len(keys):
                    buckets[instant] = keys[taken:]  # the limit is reached: the rest wait for the next round
                    break
                heapq.heappop(heap)
                del buckets[instant]
        due.sort(key=lambda item: item[2])
        return due
