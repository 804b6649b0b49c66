"""The closed forms generated code uses to find flips, against the general searches.

`windows.count_drop` (for `count(..., within=D) OP number`) must give the same next
flip as `windows.next_crossing`, and the closed form for `since(...) OP duration`
the same as `timing.crossing_instant`, both as the closure backend uses them: for any
state, bound, comparison and side of the comparison.
"""
from __future__ import annotations

import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import load_definitions
from rules.evaluate import windows
from rules.evaluate.aggregates import AggregateSpec
from rules.evaluate.context import Context
from rules.evaluate.program import compile_program

HOUR = 3_600_000
WITHIN = 24 * HOUR
SPEC = AggregateSpec("count", "page_view", (), WITHIN, None)
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

buckets = st.dictionaries(st.integers(0, 60).map(lambda h: h * HOUR), st.integers(1, 4), max_size=8)
nows = st.integers(0, 70 * HOUR)
bounds = st.integers(-1, 12)


@settings(max_examples=400, deadline=None)
@given(buckets, nows, bounds, st.sampled_from(sorted(OPS)))
def test_count_drop_finds_the_flip_next_crossing_finds(slots: dict[int, int], now: int, bound: int, op: str) -> None:
    compare = OPS[op]
    expected = windows.next_crossing(SPEC, {SPEC.key: slots}, now, lambda value: compare(value, bound), True)
    found = windows.count_drop(slots, now, WITHIN, float(bound), op in (">", "<="))
    assert found == expected


@settings(max_examples=200, deadline=None)
@given(buckets, nows, bounds, st.sampled_from(sorted(OPS)), st.booleans())
def test_generated_window_flip_agrees_with_the_closure_flip(tmp_path_factory, slots: dict[int, int], now: int, bound: int,
                                                     op: str, count_on_left: bool) -> None:
    """The segment as written both ways round (`count OP n`, `n OP count`)."""
    condition = f"count(page_view, within=24h) {op} {bound}" if count_on_left else \
        f"{bound} {op} count(page_view, within=24h)"
    folder = tmp_path_factory.mktemp("defs")
    (folder / "s.yaml").write_text(f"segments:\n  watched:\n    when: '{condition}'\n")
    segment = compile_program(load_definitions(folder)).segments[0]
    assert segment.fast_flip is not None and segment.next_flip is not None
    state = {SPEC.key: slots}
    assert segment.fast_flip(state, {}, now, {}) == segment.next_flip(Context(state, {}, now, {}))  # type: ignore[arg-type]


def _segment(tmp_path_factory, condition: str):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("defs")
    (folder / "s.yaml").write_text(f"segments:\n  watched:\n    when: '{condition}'\n")
    segment = compile_program(load_definitions(folder)).segments[0]
    assert segment.fast_flip is not None and segment.next_flip is not None
    return segment


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 2 * 10**6), st.integers(0, 2000), st.sampled_from(sorted(OPS) + ["==", "!="]),
       st.booleans(), st.sampled_from(["since(last(page_view))", "now - last(page_view)"]))
def test_generated_clock_flip_agrees_with_the_closure_flip(tmp_path_factory, last: int, now: int, seconds: int, op: str,
                                                          since_on_left: bool, elapsed: str) -> None:
    """`since(...) OP limit` rises with the clock (slope 1), `limit OP since(...)` falls."""
    limit = f"{seconds}s"
    condition = f"{elapsed} {op} {limit}" if since_on_left else f"{limit} {op} {elapsed}"
    segment = _segment(tmp_path_factory, condition)
    slots = {AggregateSpec("last_ts", "page_view", (), None, None).key: last}
    assert segment.fast_flip(slots, {}, now, {}) == segment.next_flip(Context(slots, {}, now, {}))  # type: ignore[arg-type]
