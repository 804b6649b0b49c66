"""Customers and segment members on this worker's partitions, kept without rescanning.

The worker reads every state of its partitions once after each assignment (to rebuild
its timers); the counts start from that scan and then follow the changes the worker
publishes and the customers it creates, so a scrape or `GET /segments` costs nothing
whatever the number of customers.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rules import Change
from rules.evaluate.engine import ANONYMOUS
from rules.evaluate.state import CustomerState
from stream.kafka.statestore import ALIAS_PREFIX


def is_customer_key(key: str) -> bool:
    """Table keys of identified customers (not visitors known by anonymous id, not aliases)."""
    return not key.startswith(ANONYMOUS) and not key.startswith(ALIAS_PREFIX)


class LocalCounts:
    def __init__(self) -> None:
        self.members: Counter[str] = Counter()
        self.customers = 0

    def reset(self) -> None:
        """Partitions were (re)assigned: the scan that follows counts from zero."""
        self.members.clear()
        self.customers = 0

    def add_state(self, key: str, state: CustomerState) -> None:
        """One stored state of an assigned partition, seen by the post-assignment scan."""
        if is_customer_key(key):
            self.customers += 1
            self.members.update(state.memberships())

    def count_new(self, created: Iterable[str]) -> None:
        """Count the customers among a round's new states (`TableStates.created`)."""
        self.customers += sum(1 for key in created if is_customer_key(key))

    def changed(self, change: Change) -> None:
        self.members[change.segment] += 1 if change.change == "enter" else -1

    def sizes(self, segments: list[str]) -> dict[str, int]:
        """Members per segment, every defined segment included (0 when empty)."""
        return {name: max(0, self.members.get(name, 0)) for name in segments}
