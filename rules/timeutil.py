"""Durations and timestamps as integer milliseconds.

Every instant inside segmenter is epoch milliseconds (UTC) and every duration is
milliseconds, so comparisons and arithmetic are plain integer operations on the hot
path; parsing and formatting happen only at the edges.
"""
from __future__ import annotations

import time

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = 365 * DAY

UNITS = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, "y": YEAR}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLI = timedelta(milliseconds=1)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdwy])$")


def parse_duration(text: str) -> int:
    """`90d` -> milliseconds. Raises ValueError with a readable message."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 45s, 30m, 4h, 90d, 2w, 1y)")
    return round(float(match.group(1)) * UNITS[match.group(2)])


def format_duration(ms: int) -> str:
    """Largest whole unit that represents `ms` exactly, for messages and explanations."""
    for unit in ("y", "w", "d", "h", "m", "s"):
        size = UNITS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _parse_rfc3339(text: str) -> int:
    if len(text) < 20 or text[10] not in "Tt ":
        raise ValueError("expected RFC 3339 date-time with offset")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return (parsed - _EPOCH) // _MILLI


def fast_timestamp(text: str) -> int:
    """RFC 3339 text -> epoch ms on the hot path; falls back for the precise error."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return parse_timestamp(text)
    if parsed.tzinfo is None or len(text) < 20:
        return parse_timestamp(text)
    return (parsed - _EPOCH) // _MILLI


def parse_timestamp(value: object) -> int:
    """RFC 3339 with offset, or integer epoch milliseconds -> epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("timestamp must be RFC 3339 text or integer epoch milliseconds")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return _parse_rfc3339(value)
        except ValueError as exc:
            raise ValueError(f"cannot parse timestamp {value!r}: {exc}") from None
    raise ValueError("timestamp must be RFC 3339 text or integer epoch milliseconds")


@lru_cache(maxsize=16_384)
def timestamp_or_none(value: object) -> int | None:
    """Lenient variant for profile attributes: unparseable values count as missing.

    Cached: the same profile text (a birthday, a signup date) is read on every evaluation.
    """
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


_MINUTES: dict[int, str] = {}  # epoch minute -> "YYYY-MM-DDTHH:MM:", for format_timestamp


def format_timestamp(ms: int) -> str:
    """Epoch ms -> `2026-11-20T10:00:00Z` (milliseconds shown only when not zero).

    Every change event carries one, and consecutive changes mostly fall in the same
    minute (live, or replayed in time order): the text up to the minute is kept for
    the latest few thousand minutes, which makes this about three times cheaper."""
    seconds, millis = divmod(ms, 1000)
    minute, second = divmod(seconds, 60)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) >= 4096:
            _MINUTES.clear()
        t = time.gmtime(minute * 60)
        prefix = _MINUTES[minute] = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
    return f"{prefix}{second:02d}.{millis:03d}Z" if millis else f"{prefix}{second:02d}Z"
