"""How long to keep trying a failing destination before dead-lettering an action.

Exponential backoff with jitter: the n-th wait is drawn from
[d/2, d] with d = min(cap, base * 2**(n-1)). The jitter keeps many sinks processes
from hammering a recovering server in lockstep; the bound keeps a dead destination
from stopping the stream: after `max_retries` retries the action is dead-lettered
and the sink moves on.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


SLOWEST_MESSAGE = 120.0
"""Seconds one message may take once started (an email: profile lookup, connect,
each SMTP step under its own timeout), for the bound of a round."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base: float = 0.2  # seconds before the first retry (before jitter)
    cap: float = 10.0  # longest single wait
    attempt_budget: float = 60.0  # seconds in which one attempt at a destination starts messages

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        ceiling = min(self.cap, self.base * 2 ** (retry - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def budget(self) -> float:
        """The longest a destination may be down before actions are dead-lettered."""
        return float(sum(min(self.cap, self.base * 2 ** (n - 1)) for n in range(1, self.max_retries + 1)))

    def round_limit(self) -> float:
        """The longest one round can take, whatever a destination does: each attempt
        starts messages for `attempt_budget` seconds and the last ones started finish
        within `SLOWEST_MESSAGE`, plus the waits between attempts. The consumer's poll
        interval must be longer, or a round past it runs again."""
        return self.attempts * (self.attempt_budget + SLOWEST_MESSAGE) + self.budget()
