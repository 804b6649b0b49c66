"""Time buckets for sliding windows.

A `within=D` aggregate keeps one partial aggregate per UTC-aligned bucket, so memory
per customer is bounded by D / width whatever the event rate. A bucket is kept under
the time of its earliest event and counts while that event lies inside the window
(`first > now - D`): a customer whose events are further apart than a bucket gets the
exact sliding window (an order exactly 90 days after the previous one keeps a
`within=90d` member in), and where several events share a bucket, the later ones may
leave up to one bucket width early with the earliest. No event at or before `now - D`
is ever counted. The width is the largest "round" size at most 1 % of the window,
capped at 1 hour for windows up to 30 days and at 1 day beyond (the product contract
(section 3)).

Which bucket an event joins depends only on its time, and a bucket's key only on the
events in it, so the result does not depend on the order events arrive in: an event
too old to count still joins its bucket (it can make the bucket's later events stop
counting, as it would have had it come in time), and a bucket is dropped only once
every instant of its range has left the window.

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


def fold_in(buckets: dict[int, Slot], ts: int, width: int, floor: int, fold: Callable[[Slot], Slot],
            empty: Slot) -> None:
    """Fold an event at `ts` into its bucket (`fold(slot)`), the window's floor being
    `floor` (= now - within). The bucket is re-keyed when the event is its earliest;
    a bucket whose earliest event has left the window never counts again and is left
    as it is. The buckets stay in time order, so the latest, where most events go, is
    the last one, found without a search; buckets whose whole range has left the
    window are dropped when a new one opens, which keeps memory bounded without a
    scan on every event."""
    start = ts - ts % width
    if start + width <= floor + 1:
        return  # every instant of its bucket has left the window: it can never count
    if not buckets:
        buckets[ts] = fold(empty)
        return
    for last in reversed(buckets):
        break
    if start <= last < start + width:  # the latest bucket (re-keyed, it stays the last)
        if last <= floor:
            return  # its earliest event has left the window: the bucket never counts again
        if ts < last:
            buckets[ts] = fold(buckets.pop(last))
        else:
            buckets[last] = fold(buckets[last])
        return
    gone = floor + 1 - width  # the ranges that start here or before have left the window
    limit = gone - gone % width + width  # = the keys below this, at the front in time order
    if next(iter(buckets)) < limit:
        for old in [first for first in buckets if first < limit]:
            del buckets[old]
    if last < start and start not in buckets:  # after the latest bucket: a new one at the end
        # (`start in buckets`: a bucket kept under its range's start, maybe out of time
        # order, by a version that keyed buckets so; the search below finds it)
        buckets[ts] = fold(empty)
        return
    found = _bucket_of(buckets, start, width)
    if found is None:
        buckets[ts] = fold(empty)
    elif found <= floor:
        return  # its earliest event has left the window: the bucket never counts again
    else:
        buckets[min(found, ts)] = fold(buckets.pop(found))
    in_order = sorted(buckets.items())  # a late event: put the buckets back in time order
    buckets.clear()
    buckets.update(in_order)


def merge_bucket(buckets: dict[int, Slot], first: int, slot: Slot, width: int,
                 merge: Callable[[Slot, Slot], Slot]) -> None:
    """Merge another history's bucket (keyed by its earliest event) into `buckets`;
    the caller puts them back in time order."""
    found = _bucket_of(buckets, first - first % width, width)
    if found is None:
        buckets[first] = slot
    else:
        buckets[min(found, first)] = merge(buckets.pop(found), slot)


def _bucket_of(buckets: dict[int, Slot], start: int, width: int) -> int | None:
    """The key of the bucket of the range that begins at `start`, if there is one."""
    return next((first for first in buckets if start <= first < start + width), None)


def next_expiry(spec: AggregateSpec, slots: dict[str, Slot], now: int) -> int | None:
    """The next instant after `now` at which a bucket leaves the window."""
    buckets: dict[int, Slot] | None = slots.get(spec.key)  # type: ignore[assignment]
    if not buckets or spec.within is None:
        return None
    later = [first + spec.within for first in buckets if first + spec.within > now]
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
    for first in sorted(first for first in buckets if first > floor):
        remaining = minus(remaining, buckets[first])  # type: ignore[arg-type]
        if holds(remaining) != current:
            return first + spec.within
    return None


def window_sum(buckets: dict[int, int | float] | None, floor: int) -> int | float:
    """A windowed sum over the buckets whose earliest event is after `floor`, added in decimal."""
    total: int | float = 0
    for first, bucket in (buckets or {}).items():
        if first > floor:
            total = exact.add(total, bucket)
    return total


def window_total(buckets: dict[int, int] | None, floor: int) -> int:
    """A windowed count over the buckets whose earliest event is after `floor` (= now - within)."""
    if not buckets:
        return 0
    total = 0
    for first, bucket in buckets.items():  # a loop: a comprehension is a function call (Python 3.11)
        if first > floor:
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
    for first in sorted(buckets):  # oldest first
        if first > floor:
            remaining -= buckets[first]
            if remaining < bound or (to_bound and remaining == bound):
                return first + within
    return None
