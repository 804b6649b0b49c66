"""Change events carry `at` as RFC 3339 UTC text with milliseconds only when not zero
(SPEC section 4). `format_timestamp` keeps the text up to the minute for recent
minutes; it must agree with `datetime`'s own formatting for any instant, in any
order (cache hits, misses and the cache being emptied), and read back exactly."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.timeutil import format_timestamp, parse_timestamp

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


def test_more_minutes_than_are_kept() -> None:
    moments = [1_700_000_000_000 + minute * 60_000 + minute % 1000 for minute in range(10_000)]
    assert [format_timestamp(ms) for ms in moments] == [_reference(ms) for ms in moments]
    assert [format_timestamp(ms) for ms in reversed(moments)] == [_reference(ms) for ms in reversed(moments)]
