"""Time buckets for sliding windows.

A `within=D` aggregate keeps one partial aggregate per UTC-aligned bucket, so memory
per customer is bounded by D / width whatever the event rate. A bucket counts while it
lies wholly inside the window (`start > now - D`); it may therefore drop up to one
bucket of the oldest events early and never counts an event at or before `now - D`.
The width is the largest "round" size at most 1 % of the window, capped at 1 hour for
windows up to 30 days and at 1 day beyond (the product contract (section 3)).

Besides the buckets themselves, this module reads them: a window's total as of an
instant, and the next instant at which its value, or a comparison of it, changes as
buckets leave the window (the flips a windowed condition makes with no new event).
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from rules.evaluate import exact
from rules.timeutil import DAY, HOUR, MINUTE, SECOND

if TYPE_CHECKING:
    from rules.evaluate.aggregates import AggregateSpec, Slot

NICE_WIDTHS = (SECOND, 10 * SECOND, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY)


def bucket_width(window: int) -> int:
    cap = HOUR if window <= 30 * DAY else DAY
    best = SECOND
    for width in NICE_WIDTHS:
        if width <= window // 100 and width <= cap:
            best = width
    return best


def bucket_start(ts: int, width: int) -> int:
    return ts - ts % width


def counts(start: int, now: int, window: int) -> bool:
    """Does the bucket starting at `start` lie wholly inside `(now - window, now]`?"""
    return start > now - window


def expiry(start: int, window: int) -> int:
    """First instant at which the bucket no longer counts."""
    return start + window


def next_expiry(spec: AggregateSpec, slots: dict[str, Slot], now: int) -> int | None:
    """The next instant after `now` at which a bucket leaves the window."""
    buckets: dict[int, Slot] | None = slots.get(spec.key)  # type: ignore[assignment]
    if not buckets or spec.within is None:
        return None
    later = [start + spec.within for start in buckets if start + spec.within > now]
    return min(later) if later else None


def next_crossing(spec: AggregateSpec, slots: dict[str, Slot], now: int,
                  holds: Callable[[object], object], ordered: bool = False) -> int | None:
    """For count/sum windows: the first bucket expiry after `now` at which `holds(value)`
    changes. Exact, because between expiries the value is constant; when nothing
    changes before the window empties, there is no flip to wait for. `ordered` says
    `holds` is an ordering comparison (<, <=, >, >=) with a fixed bound."""
    buckets: dict[int, Slot] | None = slots.get(spec.key)  # type: ignore[assignment]
    if not buckets or spec.within is None:
        return None
    floor = now - spec.within
    if spec.kind == "sum":  # totals added in decimal (see `exact`)
        remaining, minus = window_sum(buckets, floor), exact.subtract  # type: ignore[arg-type]
    else:
        remaining, minus = window_total(buckets, floor), operator.sub  # type: ignore[arg-type]
    current = holds(remaining)
    if ordered and spec.kind == "count" and holds(0) == current:
        return None  # a count only falls as buckets expire: a comparison true (or false) at both ends stays so
    for start in sorted(start for start in buckets if start > floor):
        remaining = minus(remaining, buckets[start])  # type: ignore[arg-type]
        if holds(remaining) != current:
            return start + spec.within
    return None


def window_sum(buckets: dict[int, int | float] | None, floor: int) -> int | float:
    """A windowed sum over the buckets that start after `floor`, added in decimal."""
    total: int | float = 0
    for start, bucket in (buckets or {}).items():
        if start > floor:
            total = exact.add(total, bucket)
    return total


def window_total(buckets: dict[int, int] | None, floor: int) -> int:
    """A windowed count over the buckets that start after `floor` (= now - within)."""
    if not buckets:
        return 0
    total = 0
    for start, bucket in buckets.items():  # a loop: a comprehension is a function call (Python 3.11)
        if start > floor:
            total += bucket
    return total


def count_drop(buckets: dict[int, int] | None, now: int, within: int, bound: float, to_bound: bool) -> int | None:
    """The first bucket expiry after `now` at which a windowed count falls below `bound`
    (`to_bound`: to `bound` or below); None when it is already there or never gets
    there. The fast path of `next_crossing` for `count(..., within=D) OP number`:
    `>=` and `<` change truth exactly when the count falls below the bound, `>` and
    `<=` when it falls to it, and a count only falls as buckets expire."""
    if not buckets:
        return None
    floor = now - within
    remaining = window_total(buckets, floor)
    if to_bound:
        if remaining <= bound or bound < 0:
            return None
    elif remaining < bound or bound <= 0:
        return None
    for start in sorted(buckets):  # the bucket starts, oldest first
        if start > floor:
            remaining -= buckets[start]
            if remaining < bound or (to_bound and remaining == bound):
                return start + within
    return None
