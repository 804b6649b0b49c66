"""A duration scaled by a number flips at the first millisecond its condition holds.

`since(last(added_to_cart)) / 1.5 > 2h` holds from 3h and 1 ms after the cart. The
flip search solved it with the float slope 1 / 1.5 and found an instant a millisecond
early, where the condition (computed exactly) did not hold yet; no flip was made at
all, and the segment was entered only if a later event re-evaluated it."""
from __future__ import annotations

import math
import operator
from fractions import Fraction
from pathlib import Path

import pytest

from rules.evaluate.aggregates import AggregateSpec
from rules.evaluate.context import Context
from rules.evaluate.program import compile_program
from rules.testing import MemorySink, MemorySource, definitions_from_text, run
from rules.timeutil import HOUR, parse_timestamp

CART = parse_timestamp("2026-01-01T01:20:00.001Z")
SCALE = {"*": operator.mul, "/": operator.truediv}
HOLDS = {">": operator.gt, ">=": operator.ge}


def first_instant(scale: str, factor: str, op: str) -> int:
    """The first whole millisecond after the cart at which the condition holds, from
    the numbers as written (a scan around the exact root)."""
    bound = Fraction(2 * HOUR)
    root = bound * Fraction(factor) if scale == "/" else bound / Fraction(factor)
    elapsed = math.floor(root) - 2
    while not HOLDS[op](SCALE[scale](Fraction(elapsed), Fraction(factor)), bound):
        elapsed += 1
    return CART + elapsed


@pytest.mark.parametrize("factor", ["1.5", "3", "0.1", "0.7", "2.5", "0.3"])
@pytest.mark.parametrize("scale", ["*", "/"])
@pytest.mark.parametrize("op", [">", ">="])
def test_the_flip_is_at_the_first_millisecond_the_condition_holds(tmp_path: Path, factor: str, scale: str,
                                                                  op: str) -> None:
    definitions = definitions_from_text(f"""
segments:
  waited:
    when: since(last(added_to_cart)) {scale} {factor} {op} 2h
""", tmp_path / "d")
    source, sink = MemorySource(), MemorySink()
    source.add("added_to_cart", "c-1", CART)
    source.add("page_view", "c-1", CART + 400 * HOUR)  # the replay's end; page views re-evaluate nothing
    run(definitions, source, sink)
    expected = first_instant(scale, factor, op)
    assert [(c.change, c.at, c.cause) for c in sink.changes] == [("enter", expected, "timer")]
    # both flip searches: the generated one (which replay used) and the closures'
    segment = compile_program(definitions).segments[0]
    slots = {AggregateSpec("last_ts", "added_to_cart", (), None, None).key: CART}
    assert segment.fast_flip is not None and segment.next_flip is not None
    assert segment.fast_flip(slots, {}, CART, {}) == expected
    assert segment.next_flip(Context(slots, {}, CART, {})) == expected  # type: ignore[arg-type]
