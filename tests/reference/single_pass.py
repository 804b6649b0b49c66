"""Replay as one pass over all events in time order, with a heap of wake-up times: the
straightforward way `stream.replay` must match, kept here as its second code path.

`stream.replay` runs each customer's history to its end before the next and sorts the
changes afterwards; this runs everything in one clock. Both must publish the same
changes in the same order."""
from __future__ import annotations

import heapq

from rules import Change, Engine, Event
from stream.replay import OnChange, ReplaySummary


def replay_in_one_pass(engine: Engine, events: list[Event], on_change: OnChange,
                       as_of: int | None = None) -> ReplaySummary:
    """Run `events` (already in event-time order) through `engine` up to `as_of`."""
    summary = ReplaySummary()
    if as_of is None:
        as_of = events[-1].ts if events else 0
    summary.as_of = as_of
    # Wake-up times: a heap of distinct instants, and the customers due at each. Plain
    # integers in the heap compare far faster than (instant, key) tuples.
    timers: list[int] = []
    due_at: dict[int, list[str]] = {}
    push, pop = heapq.heappush, heapq.heappop

    def schedule(instant: int, key: str) -> None:
        keys = due_at.get(instant)
        if keys is None:
            due_at[instant] = [key]
            push(timers, instant)
        else:
            keys.append(key)

    def emit(changes: list[Change]) -> None:
        for change in changes:
            on_change(change)
            summary.changes += 1
            if change.cause == "timer":
                summary.timer_changes += 1

    def fire_until(limit: int, inclusive: bool) -> None:
        while timers and (timers[0] <= limit if inclusive else timers[0] < limit):
            instant = pop(timers)
            for key in sorted(due_at.pop(instant)):  # customers due together: in key order
                changes = engine.advance(key, instant)
                if changes:
                    emit(changes)
                wake = engine.wake_at(key)
                if wake is not None and wake > instant:
                    schedule(wake, key)

    duplicates_before = engine.duplicates
    key_of, apply, states = engine.key_of, engine.apply, engine.states
    applied = 0
    for position, event in enumerate(events):
        if event.ts > as_of:
            summary.skipped_after_as_of = len(events) - position
            break
        if timers and timers[0] < event.ts:
            fire_until(event.ts, inclusive=False)
        key = event.customer_id or key_of(event)
        state = states.get(key)
        if state is not None:  # apply() changes this very object
            before = state.wake
            changes = apply(event)
        else:
            before = None
            changes = apply(event)
            state = states.get(key)
        if changes:
            emit(changes)
        # An earlier wake needs a heap entry; a later one is re-pushed when the
        # stale entry pops (advance() then does nothing and reports the new wake).
        if state is not None:
            wake = state.wake
            if wake is not None and (before is None or wake < before):
                schedule(wake, key)
        applied += 1
    fire_until(as_of, inclusive=True)
    summary.duplicates = engine.duplicates - duplicates_before
    summary.applied = applied - summary.duplicates
    return summary
