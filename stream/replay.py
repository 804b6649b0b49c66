"""Replay: the streaming evaluator driven by event time over a file.

Each customer's events are applied in event-time order with the event's timestamp as
the clock, and time-based flips fire at the instant they happen, so the change stream
is what the live worker would have published had the events arrived on time.

Customers do not affect each other, except that `identify` (any event carrying both
ids) hands a visitor's history to a customer. So the events are split into
histories (one per customer, with the visitors linked to it) and each history runs
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
    for customers, positions in histories(events, end):
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
        for customer in customers:
            for change in advance(customer, as_of):
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
"""The customer ids of one history (to advance at the end) and its event positions, in order."""


def histories(events: list[Event], end: int) -> list[History]:
    """Group `events[:end]` by customer; a visitor's events join the customer an event
    with both ids links it to (every customer a visitor is linked to shares one
    history, so whichever link the engine honours, its events are there)."""
    by_customer: defaultdict[str, list[int]] = defaultdict(list)
    by_visitor: defaultdict[str, list[int]] = defaultdict(list)
    links: list[tuple[str, str]] = []
    for position, event in enumerate(events if end == len(events) else events[:end]):
        customer = event.customer_id
        if customer is None:
            by_visitor[event.anonymous_id].append(position)  # type: ignore[index]
        else:
            by_customer[customer].append(position)
            if event.anonymous_id is not None:
                links.append((event.anonymous_id, customer))
    result: list[History] = []
    for customers, visitors in _linked(links):
        positions: list[int] = []
        for customer in customers:
            positions += by_customer.pop(customer)
        for visitor in visitors:
            positions += by_visitor.pop(visitor, ())
        positions.sort()
        result.append((customers, positions))
    result.extend(([customer], positions) for customer, positions in by_customer.items())
    result.extend(([], positions) for positions in by_visitor.values())
    return result


def _linked(links: list[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Connected groups of (customers, visitors) over the (visitor, customer) links."""
    parent: dict[tuple[int, str], tuple[int, str]] = {}

    def root(node: tuple[int, str]) -> tuple[int, str]:
        while parent.get(node, node) != node:
            node = parent[node] = parent.get(parent[node], parent[node])
        return node

    for visitor, customer in links:
        a, b = root((0, visitor)), root((1, customer))
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        if a != b:
            parent[a] = b
    groups: dict[tuple[int, str], tuple[list[str], list[str]]] = {}
    for node in parent:
        customers, visitors = groups.setdefault(root(node), ([], []))
        (customers if node[0] else visitors).append(node[1])
    return [(sorted(customers), visitors) for customers, visitors in groups.values()]
