"""The worker's timer index hands out each customer's latest wake-up exactly once, in
time order, however rounds are cut by their limit: checked against the plain record
of what was scheduled last."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.kafka.timers import TimerIndex

schedules = st.lists(st.tuples(st.integers(0, 11), st.none() | st.integers(0, 30)), max_size=60)


@settings(max_examples=1000, deadline=None)
@given(schedules, st.integers(0, 40), st.integers(1, 7))
def test_due_flips_come_once_each_in_time_order(scheduled: list[tuple[int, int | None]], wall: int,
                                                 limit: int) -> None:
    index = TimerIndex()  # no topics: every partition's horizon is the wall clock
    latest: dict[str, tuple[int, int]] = {}
    for number, instant in scheduled:
        key, partition = f"c-{number}", number % 2  # a key lives on one partition
        index.schedule(key, partition, instant)
        if instant is None:
            latest.pop(key, None)
        else:
            latest[key] = (partition, instant)
    expected_next = min((instant for _, instant in latest.values()), default=None)
    assert index.next_instant() == expected_next

    fired: list[tuple[str, int, int, int]] = []
    while batch := index.pop_due(wall, limit):
        assert len(batch) <= limit
        assert [item[2] for item in batch] == sorted(item[2] for item in batch)
        fired += batch
    due = {key: at for key, at in latest.items() if at[1] <= wall}
    assert sorted((key, partition, instant) for key, partition, instant, _ in fired) == \
        sorted((key, partition, instant) for key, (partition, instant) in due.items())
    later = [instant for _, instant in latest.values() if instant > wall]
    assert index.next_instant() == min(later, default=None)
