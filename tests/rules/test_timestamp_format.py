"""Change events carry `at` as RFC 3339 UTC text with milliseconds only when not zero
(SPEC section 4). `format_timestamp` keeps the date text of recent days; it must
agree with `datetime`'s own formatting for any instant, in any order (cache hits,
misses and the cache being emptied), and read back exactly. The hot-path parser
must accept exactly what `datetime` reads as RFC 3339 with an offset (and 'z' for 'Z')."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.timeutil import fast_timestamp, format_timestamp, parse_timestamp, timestamp_or_none

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
instants = st.integers(-(10**12), 253_402_300_799_999)  # 1938 .. 9999-12-31


def _reference(ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


@settings(max_examples=500, deadline=None)
@given(st.lists(instants | st.integers(1_763_600_000_000, 1_763_600_400_000), min_size=1, max_size=50))
def test_formatting_agrees_with_datetime_and_reads_back(moments: list[int]) -> None:
    for ms in moments:
        text = format_timestamp(ms)
        assert text == _reference(ms)
        assert parse_timestamp(text) == ms


def test_more_days_than_are_kept() -> None:
    moments = [1_000_000_000_000 + day * 86_400_000 + day * 7_919 % 86_400_000 for day in range(10_000)]
    assert [format_timestamp(ms) for ms in moments] == [_reference(ms) for ms in moments]
    assert [format_timestamp(ms) for ms in reversed(moments)] == [_reference(ms) for ms in reversed(moments)]


def _shapes(ms: int) -> list[str]:
    moment = EPOCH + timedelta(milliseconds=ms)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = f"{moment.microsecond // 1000:03d}"
    return [f"{base}Z", f"{base}.{millis}Z", f"{base}+00:00", f"{base}.{millis}+02:00", f"{base}z"]


def _reference_ms(text: str) -> int | None:
    """What `datetime` makes of an RFC 3339 text with offset (None: not one). RFC 3339
    (section 5.6) allows the zone designator in lower case, which `datetime` does not read."""
    try:
        parsed = datetime.fromisoformat(text[:-1] + "Z" if text.endswith("z") else text)
    except ValueError:
        return None
    if parsed.tzinfo is None or len(text) < 20 or text[10] not in "Tt ":
        return None
    return (parsed - EPOCH) // timedelta(milliseconds=1)


def _fast_or_none(text: str) -> int | None:
    try:
        return fast_timestamp(text)
    except ValueError:
        return None


@settings(max_examples=400, deadline=None)
@given(instants, st.integers(0, 19), st.sampled_from(["9", "6", "a", " ", "+", "-", ":", "T", "Z", "0"]))
def test_fast_parsing_agrees_with_datetime_on_good_and_broken_texts(ms: int, where: int, char: str) -> None:
    for text in _shapes(ms):
        assert _fast_or_none(text) == _reference_ms(text), text
        broken = text[:where] + char + text[where + 1:]
        assert _fast_or_none(broken) == _reference_ms(broken), broken


def test_fast_parsing_rejects_out_of_range_fields() -> None:
    for text in ["2025-02-30T10:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T10:60:00Z", "2025-01-01T10:00:60Z",
                 "2025-01-01T1 :00:00Z", "2025-01-01T10:00:00.+12Z", "2025-13-01T10:00:00Z"]:
        assert _fast_or_none(text) is None, text


@given(st.dates(min_value=datetime(1970, 1, 1).date()))
def test_a_profile_date_alone_is_midnight_utc(day) -> None:
    """Profile attributes (signup dates, birthdays) often come as a date alone."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    assert timestamp_or_none(day.isoformat()) == (midnight - EPOCH) // timedelta(milliseconds=1)


def test_profile_text_that_is_no_date_counts_as_missing() -> None:
    for text in ["2024-02-30", "2024-05-01\n", "2024-5-1", "01.05.2024", "２０２４-０５-０１"]:
        assert timestamp_or_none(text) is None, text
