"""Durations and timestamps as integer milliseconds.

Every instant inside segmenter is epoch milliseconds (UTC) and every duration is
milliseconds, so comparisons and arithmetic are plain integer operations on the hot
path; parsing and formatting happen only at the edges.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import msgspec
import orjson

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


def spell_duration(ms: int) -> str:
    """`83d 10h 42m 10.062s`: days down to milliseconds, for a person reading a countdown
    (`format_duration` would write `7209730062ms`, or `310h` for 12 days and 22 hours)."""
    if ms == 0:
        return "0s"
    sign, rest = ("-" if ms < 0 else ""), abs(ms)
    days, rest = divmod(rest, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value]
    if seconds or millis:
        parts.append(f"{seconds}.{millis:03d}s" if millis else f"{seconds}s")
    return sign + " ".join(parts)


_read_datetime = msgspec.json.Decoder(datetime).decode


def _parse_rfc3339(text: str) -> int:
    """RFC 3339 as msgspec reads it (event decoding reads timestamps with msgspec, so
    every path must agree with it: 'T' and 'Z' in either case, digits past the
    microsecond rounded); what msgspec refuses but `datetime` reads is accepted too."""
    if len(text) < 20 or text[10] not in "Tt ":
        raise ValueError("expected RFC 3339 date-time with offset")
    try:
        parsed = _read_datetime(orjson.dumps(text))
    except (msgspec.DecodeError, TypeError):  # TypeError: text orjson cannot encode (a lone surrogate)
        parsed = datetime.fromisoformat(text)
    return epoch_ms(parsed)


def epoch_ms(moment: datetime) -> int:
    """An aware datetime -> epoch ms (a naive one has no instant: ValueError)."""
    if moment.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return (moment - _EPOCH) // _MILLI


def fast_timestamp(text: str) -> int:
    """RFC 3339 text -> epoch ms on the hot path: `parse_timestamp` for text, without its
    type checks; the error message is built only when the text is bad."""
    try:
        return _parse_rfc3339(text)
    except ValueError:
        return parse_timestamp(text)  # raises with the reason


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
            reason = "the UTC offset must lie within ±23:59" if "offset must be a timedelta" in str(exc) else exc
            raise ValueError(f"cannot parse timestamp {value!r}: {reason}") from None
    raise ValueError("timestamp must be RFC 3339 text or integer epoch milliseconds")


DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
"""A date alone (`2024-05-01`), to be matched whole."""


@lru_cache(maxsize=16_384)
def timestamp_or_none(value: object) -> int | None:
    """Lenient variant for profile attributes: unparseable values count as missing, and
    a date alone (`2024-05-01`, as CRMs export signup dates and birthdays) is midnight
    UTC of that day.

    Cached: the same profile text (a birthday, a signup date) is read on every evaluation.
    """
    try:
        if type(value) is str and DATE_ONLY.fullmatch(value):
            return epoch_ms(datetime.fromisoformat(value).replace(tzinfo=timezone.utc))
        return parse_timestamp(value)
    except ValueError:
        return None


def instant_or_none(value: object) -> int | float | None:
    """What a condition can read as an instant (`since`, a flip's line): a number of
    epoch milliseconds, or text that `timestamp_or_none` reads; else None."""
    if isinstance(value, str):
        return timestamp_or_none(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


_DAYS: dict[int, str] = {}  # epoch day -> "YYYY-MM-DDT", for format_timestamp
_TWO_DIGITS = [f"{n:02d}" for n in range(100)]
_MILLIS = [f".{n:03d}" for n in range(1000)]


def format_timestamp(ms: int) -> str:
    """Epoch ms -> `2026-11-20T10:00:00Z` (milliseconds shown only when not zero).

    Every change event carries one. The date part is kept per day (a replay over a
    year of history needs a few hundred) and the time of day is put together from
    ready-made two-digit strings: about six times cheaper than `time.gmtime` and
    format specifications per call, on changes spread over many days."""
    seconds, millis = divmod(ms, 1000)
    day, second = divmod(seconds, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        if len(_DAYS) >= 8192:
            _DAYS.clear()
        t = time.gmtime(day * 86_400)
        prefix = _DAYS[day] = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    two = _TWO_DIGITS
    if millis:
        return f"{prefix}{two[hour]}:{two[minute]}:{two[second]}{_MILLIS[millis]}Z"
    return f"{prefix}{two[hour]}:{two[minute]}:{two[second]}Z"
