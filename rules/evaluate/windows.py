"""Time buckets for sliding windows.

A `within=D` aggregate keeps one partial aggregate per UTC-aligned bucket, so memory
per customer is bounded by D / width whatever the event rate. A bucket counts while it
lies wholly inside the window (`start > now - D`); it may therefore drop up to one
bucket of the oldest events early and never counts an event at or before `now - D`.
The width is the largest "round" size at most 1 % of the window, capped at 1 hour for
windows up to 30 days and at 1 day beyond (the product contract (section 3)).
"""
from __future__ import annotations

from rules.timeutil import DAY, HOUR, MINUTE, SECOND

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
