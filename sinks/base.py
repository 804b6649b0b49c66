"""What every sink is: a destination that takes a batch of deliveries.

A sink answers for each delivery in the batch, in order, with `Status.APPLIED`,
`Status.DUPLICATE` (the effect was already there: a redelivered or stale change) or
the exception that stopped it. Sinks never retry or dead-letter themselves; the
dispatcher does that the same way for all of them (`sinks.dispatch`), so "nothing is
lost" is implemented once. `PermanentError` tells the dispatcher that retrying cannot
help (a missing template, a 400 answer) and the action goes to the dead-letter topic
at once.
"""
from __future__ import annotations

import asyncio
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from rules.language.model import Action, Destination
from sinks.changes import ChangeEvent


class Status(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"


Outcome = Status | Exception


class PermanentError(Exception):
    """Retrying will not help; dead-letter the action now."""


class HeldBack(Exception):
    """Not attempted, because an earlier action of the same customer failed: kept in order."""


class NotStarted(Exception):
    """Not attempted, because the attempt's time was up (a slow or hung destination):
    left for the next attempt, so one attempt cannot hold the round for long."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One action of one change, bound for one destination."""

    change: ChangeEvent
    action: Action
    attempts: int = 0  # attempts already made before (a redriven dead letter)


class Sink(ABC):
    """Base of all destinations. `start` opens connections, `close` releases them."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.name = destination.name

    async def start(self) -> None:
        """Open clients; errors here are not fatal, deliveries retry and report them."""

    async def close(self) -> None:
        """Release clients."""

    @abstractmethod
    async def deliver(self, batch: Sequence[Delivery], deadline: float | None = None) -> list[Outcome]:
        """Carry out every delivery; one outcome per delivery, in order. Never raises.
        `deadline` (`time.monotonic()`): sinks that send one message at a time start
        none after it (`NotStarted`); batch writes ignore it."""


class OrderedSink(Sink):
    """A sink whose effects are messages (email, HTTP): sent one by one per customer, in
    the order of the changes, customers concurrently up to `concurrency`.

    When one message of a customer fails, the customer's later ones in the batch are
    held back, so a receiver never sees an `exit` before the `enter` it follows, even
    across retries, dead letters and redrive (which replays in the same order).
    """

    concurrency = 16

    @abstractmethod
    async def deliver_one(self, item: Delivery) -> Status:
        """Send one message; raise on failure."""

    async def deliver(self, batch: Sequence[Delivery], deadline: float | None = None) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        by_customer: dict[str, list[int]] = {}
        for index, item in enumerate(batch):
            by_customer.setdefault(item.change.customer_id, []).append(index)
        gate = asyncio.Semaphore(self.concurrency)

        async def run(indexes: list[int]) -> None:
            async with gate:
                failed = False
                for index in indexes:
                    if failed:
                        outcomes[index] = HeldBack("an earlier action of this customer failed")
                        continue
                    if deadline is not None and time.monotonic() >= deadline:
                        outcomes[index] = NotStarted("not started: the attempt's time was up (a slow or hung "
                                                     "destination)")
                        continue
                    try:
                        outcomes[index] = await self.deliver_one(batch[index])
                    except Exception as exc:  # noqa: BLE001 - every failure is an outcome
                        outcomes[index] = exc
                        failed = True

        await asyncio.gather(*(run(indexes) for indexes in by_customer.values()))
        return [outcome if outcome is not None else RuntimeError("not delivered") for outcome in outcomes]
