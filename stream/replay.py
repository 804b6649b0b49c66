"""Replay: the streaming evaluator driven by event time over a file.

Each customer's events are applied in event-time order with the event's timestamp as
the clock, and time-based flips fire at the instant they happen, so the change stream
is what the live worker would have published had the events arrived on time.

Customers do not affect each other, except that `identify` (any event carrying both
ids) hands a visitor's history to a customer. So the events are split into
histories (one per state key of the engine, with the keys linked to it) and each history runs
to its end before the next: the engine catches up a customer's due flips itself
before each of its events (`Engine.apply`) and at the end (`Engine.advance`), which
gives every customer the same sequence of evaluations as one pass over all events in
time order would, without a global queue of wake-up times and with one customer's
state hot while its events run. The changes are then put in the order that single
pass publishes them: by instant; at one instant, changes caused by events (in event
order) before time-based ones (by customer id).
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from rules import Change, Engine, Event
from rules.evaluate.engine import ANONYMOUS

OnChange = Callable[[Change], None]
PROGRESS_EVERY = 20_000
"""Events between two calls of `on_progress`."""


@dataclass
class ReplaySummary:
    applied: int = 0
    duplicates: int = 0
    changes: int = 0
    timer_changes: int = 0
    skipped_after_as_of: int = 0
    as_of: int | None = None


def replay(engine: Engine, events: list[Event], on_change: OnChange, as_of: int | None = None,
           on_progress: Callable[[int], None] | None = None) -> ReplaySummary:
    """Run `events` (already in event-time order) through `engine` up to `as_of`."""
    summary = ReplaySummary()
    if as_of is None:
        as_of = events[-1].ts if events else 0
    summary.as_of = as_of
    end = bisect.bisect_right(events, as_of, key=_ts)
    summary.skipped_after_as_of = len(events) - end
    duplicates_before = engine.duplicates
    # (instant, 0, event position, n, change) for changes an event caused and
    # (instant, 1, customer id, n, change) for time-based ones: sorting these gives the
    # single pass's order; n keeps the order of changes made together.
    made: list[tuple[int, int, object, int, Change]] = []
    apply, advance, record = engine.apply, engine.advance, made.append
    done = 0
    for keys, positions in histories(events, end):
        for position in positions:
            event = events[position]
            changes = apply(event)
            if changes:
                ts = event.ts
                for change in changes:  # flips caught up before the event come first, at earlier instants
                    if change.at < ts:
                        record((change.at, 1, change.customer_id, len(made), change))
                    else:
                        record((ts, 0, position, len(made), change))
        for key in keys:  # (a visitor's key never has flips due: advancing it finds nothing)
            for change in advance(key, as_of):
                record((change.at, 1, change.customer_id, len(made), change))
        if on_progress is not None:
            before, done = done, done + len(positions)
            if before // PROGRESS_EVERY != done // PROGRESS_EVERY:
                on_progress(done)
    made.sort()
    for entry in made:
        change = entry[4]
        on_change(change)
        if change.cause == "timer":
            summary.timer_changes += 1
    summary.changes = len(made)
    summary.duplicates = engine.duplicates - duplicates_before
    summary.applied = end - summary.duplicates
    return summary


def _ts(event: Event) -> int:
    return event.ts


History = tuple[list[str], list[int]]
"""The state keys of one history (to advance at the end) and its event positions, in order."""


def histories(events: list[Event], end: int) -> list[History]:
    """Group `events[:end]` by the engine's state key (the customer id, or `anon:` and
    the anonymous id); an event with both ids links the visitor's key to the
    customer's, and linked keys share one history (every customer a visitor is linked
    to, so whichever link the engine honours, its events are there)."""
    by_key: defaultdict[str, list[int]] = defaultdict(list)
    links: list[tuple[str, str]] = []
    for position, event in enumerate(events if end == len(events) else events[:end]):
        customer = event.customer_id
        if customer is None:
            by_key[ANONYMOUS + event.anonymous_id].append(position)  # type: ignore[operator]
        else:
            by_key[customer].append(position)
            if event.anonymous_id is not None:
                links.append((ANONYMOUS + event.anonymous_id, customer))
    result: list[History] = []
    for keys in _linked(links):
        positions: list[int] = []
        for key in keys:
            positions += by_key.pop(key, ())
        positions.sort()
        result.append((keys, positions))
    result.extend(([key], positions) for key, positions in by_key.items())
    return result


def _linked(links: list[tuple[str, str]]) -> list[list[str]]:
    """The connected groups of keys over the links (union-find), each sorted."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        top = key
        while parent[top] != top:
            top = parent[top]
        while parent[key] != top:  # point the whole path at the root
            parent[key], key = top, parent[key]
        return top

    for a, b in links:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        first, second = root(a), root(b)
        if first != second:
            parent[first] = second
    groups: dict[str, list[str]] = defaultdict(list)
    for key in parent:
        groups[root(key)].append(key)
    return [sorted(keys) for keys in groups.values()]
