"""Deliveries to their sinks, with bounded retries, then dead letters.

Every destination of a batch is worked on concurrently; within one destination the
failed deliveries are retried together, in their order, after a backoff, until they
succeed, fail permanently or run out of attempts. Whatever did not succeed comes
back as a `DeadLetter`, for the caller to publish before it commits its input.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sinks.base import Delivery, HeldBack, NotStarted, PermanentError, Sink, Status
from sinks.retry import RetryPolicy
from sinks.stats import SinkStats

log = logging.getLogger("segmenter.sinks")


@dataclass(frozen=True)
class DeadLetter:
    delivery: Delivery
    error: str
    attempts: int  # all attempts so far, including those of earlier redrives


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Dispatcher:
    def __init__(self, sinks: Mapping[str, Sink], policy: RetryPolicy, stats: SinkStats,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.sinks = sinks
        self.policy = policy
        self.stats = stats
        self.sleep = sleep

    async def deliver(self, deliveries: Sequence[Delivery]) -> list[DeadLetter]:
        """Carry out every delivery; the dead letters come back in input order."""
        groups: dict[str, list[tuple[int, Delivery]]] = {}
        for index, item in enumerate(deliveries):
            groups.setdefault(item.action.destination, []).append((index, item))
        results = await asyncio.gather(*(self._destination(name, items) for name, items in groups.items()))
        return [letter for _, letter in sorted((pair for found in results for pair in found), key=lambda p: p[0])]

    async def _attempt(self, sink: Sink, items: Sequence[Delivery]) -> list[Status | Exception]:
        try:
            outcomes = await sink.deliver(items, deadline=time.monotonic() + self.policy.attempt_budget)
        except Exception as exc:  # noqa: BLE001 - a sink bug must not lose the batch
            return [exc] * len(items)
        if len(outcomes) != len(items):
            return [RuntimeError(f"sink {sink.name} answered {len(outcomes)} outcomes for {len(items)}")] * len(items)
        return outcomes

    async def _destination(self, name: str, items: list[tuple[int, Delivery]]) -> list[tuple[int, DeadLetter]]:
        sink = self.sinks.get(name)
        dead: list[tuple[int, DeadLetter]] = []
        if sink is None:
            dead = [(index, DeadLetter(item, f"unknown destination {name!r}", item.attempts)) for index, item in items]
            self.stats.add("dead_letters", name, amount=len(dead))
            return dead
        pending = items
        started = time.monotonic()
        for attempt in range(1, self.policy.attempts + 1):
            outcomes = await self._attempt(sink, [item for _, item in pending])
            retry: list[tuple[int, Delivery]] = []
            errors: list[Exception] = []
            for (index, item), outcome in zip(pending, outcomes):
                if isinstance(outcome, Status):
                    self.stats.add("deliveries", name, outcome.value)
                elif isinstance(outcome, PermanentError) or attempt == self.policy.attempts:
                    dead.append((index, DeadLetter(item, describe(outcome), item.attempts + attempt)))
                    self.stats.add("dead_letters", name)
                else:
                    retry.append((index, item))
                    errors.append(outcome)
            finished = len(pending) - len(retry)
            if finished:
                self.stats.took(name, time.monotonic() - started, finished)
            if not retry:
                break
            failed = [error for error in errors if not isinstance(error, (HeldBack, NotStarted))]
            held_back = sum(isinstance(error, HeldBack) for error in errors)
            waiting = sum(isinstance(error, NotStarted) for error in errors)
            held = (f", {held_back} of them held back in order" if held_back else "") + (
                f", {waiting} not started in the attempt's {self.policy.attempt_budget:g} s" if waiting else "")
            cause = f": {describe(failed[0])}" if failed else ""
            log.warning("%s: attempt %d of %d: %d action(s) to retry%s%s", name, attempt, self.policy.attempts,
                        len(retry), held, cause)
            self.stats.add("retries", name, amount=len(retry))
            await self.sleep(self.policy.delay(attempt))
            pending = retry
        return dead
