"""Windowed aggregates against a brute-force count over the events, whatever their
arrival order and the clock they arrive at.

A bucket counts while its earliest event is inside the window; an event too old to
count still joins its bucket, and only buckets whose whole range has left the window
are dropped. So the value at the end is a function of the events alone, and memory
stays bounded by the number of buckets a window spans.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.evaluate import aggregates, windows
from rules.evaluate.aggregates import AggregateSpec

HOUR = 3_600_000
DAY = 24 * HOUR
WITHIN = 7 * DAY
WIDTH = windows.bucket_width(WITHIN)
COUNT = AggregateSpec("count", "order_placed", (), WITHIN, None)
TOTAL = AggregateSpec("sum", "order_placed", ("total",), WITHIN, None)

times = st.lists(st.integers(0, 20 * DAY), min_size=1, max_size=30)


def brute_force(stamps: list[int], now: int) -> int:
    """Events in a UTC-aligned bucket whose earliest event is inside (now - WITHIN, now]."""
    earliest: dict[int, int] = {}
    for ts in stamps:
        earliest[ts - ts % WIDTH] = min(earliest.get(ts - ts % WIDTH, ts), ts)
    return sum(1 for ts in stamps if earliest[ts - ts % WIDTH] > now - WITHIN)


def run(spec: AggregateSpec, arrival: list[int], clock_steps: list[int]) -> tuple[dict[str, object], int]:
    """Apply events in `arrival` order, the clock never going back (as the engine's):
    each comes at its own time or, late, at the clock; returns the slots and the clock."""
    update = aggregates.make_update(spec, None)
    slots: dict[str, object] = {}
    clock = 0
    for ts, step in zip(arrival, clock_steps + [0] * len(arrival)):
        clock = max(clock + step, ts)
        update(slots, ts, f"e{ts}", {"total": 1}, clock)
    return slots, clock


@settings(max_examples=500, deadline=None)
@given(times, st.randoms(use_true_random=False), st.lists(st.integers(0, 3 * HOUR), max_size=30),
       st.integers(0, 29), st.integers(-2 * HOUR, 2 * HOUR))
def test_window_value_is_the_brute_force_whatever_the_arrival(stamps, rnd, clock_steps, which, offset) -> None:
    arrival = list(stamps)
    rnd.shuffle(arrival)
    # An end near the instant an event leaves the window (where buckets matter), and
    # at or after every clock the events came at.
    near = stamps[which % len(stamps)] + WITHIN + offset
    for spec in (COUNT, TOTAL):  # the count's own update and the general one
        slots, clock = run(spec, arrival, clock_steps)
        end = max(clock, near)
        assert aggregates.value(spec, slots, end) == brute_force(stamps, end)
        in_order, in_order_clock = run(spec, sorted(stamps), [])
        assert aggregates.value(spec, in_order, max(in_order_clock, near)) == brute_force(stamps, max(in_order_clock, near))
        buckets = slots.get(spec.key) or {}
        assert len(buckets) <= WITHIN // WIDTH + 2  # bounded whatever the history


def test_an_event_too_old_to_count_still_joins_its_bucket() -> None:
    """An order at 00:10 arriving late, when the window's floor is 00:20, makes the
    bucket of 00:00-01:00 stop counting, as it would have had it come in time: the
    order at 00:30 leaves with it."""
    assert WIDTH == HOUR
    floor = 20 * 60_000
    now = floor + WITHIN
    late, _ = run(COUNT, [30 * 60_000, 10 * 60_000], [now])
    in_time, _ = run(COUNT, [10 * 60_000, 30 * 60_000], [])
    assert aggregates.value(COUNT, late, now) == aggregates.value(COUNT, in_time, now) == 0
    assert brute_force([10 * 60_000, 30 * 60_000], now) == 0


def test_a_lone_event_leaves_the_window_exactly_when_it_is_window_old() -> None:
    ts = 5 * HOUR + 12_345  # not at its bucket's start
    slots, _ = run(COUNT, [ts], [])
    assert aggregates.value(COUNT, slots, ts + WITHIN - 1) == 1
    assert aggregates.value(COUNT, slots, ts + WITHIN) == 0


def test_buckets_saved_under_their_range_start_out_of_time_order_still_count_right() -> None:
    """State saved before buckets were kept under their earliest event: keyed by the
    range's start, a late event's bucket last. A new event in the range of a bucket
    that is not the last joins it instead of opening a second bucket of that range."""
    for spec in (COUNT, TOTAL):
        slots: dict[str, object] = {spec.key: {10 * HOUR: 1, 5 * HOUR: 1}}
        update = aggregates.make_update(spec, None)
        update(slots, 10 * HOUR + 5, "e3", {"total": 1}, 10 * HOUR + 5)
        # the range of 10:00 starts counting from 10:00, as saved: it leaves at 10:00 + 7d
        assert aggregates.value(spec, slots, 10 * HOUR + WITHIN - 1) == 2
        assert aggregates.value(spec, slots, 10 * HOUR + WITHIN) == 0
