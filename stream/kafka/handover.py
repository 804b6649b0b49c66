"""Identify hand-overs waiting for the visitor's partition to catch up.

An `identify` travels customer partition -> visitor partition -> customer partition.
On the visitor's partition the hand-over (detach the visitor's history, link the
alias) must happen at the identify's instant in event time: anonymous events of the
visitor that happened before it, but still queued on an input topic, belong in the
history; those that happen after it belong to the customer. The two topics are read
independently, so a hand-over that arrives early waits until the partition's watermark
(see `timers`) reaches the identify's time, and anonymous events later than the
identify that arrive meanwhile are kept with it and forwarded after it, in order.

The waiting requests live in the visitor's state (`held`, as tagged raw messages), so
they survive a restart; this index only says which partition waits for what.
"""
from __future__ import annotations

from collections.abc import Callable

HorizonOf = Callable[[int], int]

DETACH = b"D"
EVENT = b"E"


class PendingHandovers:
    def __init__(self) -> None:
        self._waiting: dict[int, dict[str, int]] = {}  # partition -> visitor key -> identify ts

    def __bool__(self) -> bool:
        return any(self._waiting.values())

    def wait(self, partition: int, key: str, identify_ts: int) -> None:
        keys = self._waiting.setdefault(partition, {})
        keys[key] = min(identify_ts, keys.get(key, identify_ts))

    def since(self, key: str, partition: int) -> int | None:
        """The identify time a visitor waits on, or None when it does not wait."""
        return self._waiting.get(partition, {}).get(key)

    def due(self, horizon_of: HorizonOf) -> list[tuple[int, str]]:
        """(partition, visitor key) of hand-overs whose partition has caught up; removed here."""
        ready: list[tuple[int, str]] = []
        for partition, keys in self._waiting.items():
            if not keys:
                continue
            horizon = horizon_of(partition)
            for key, ts in list(keys.items()):
                if ts <= horizon:
                    del keys[key]
                    ready.append((partition, key))
        return ready
