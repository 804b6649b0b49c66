"""`+ - * /` between numbers give what a person computes from the numbers as written.

In floats 1100.10 - 200.10 is 899.9999999999999: a customer of the shop example who
spent 1,100.10 and got 200.10 back would leave `loyalty` ("stays in until it drops
below 900") with exactly 900 kept. Every expectation here is computed with
`fractions.Fraction` from the amounts as written, independently of the engine."""
from __future__ import annotations

import operator
import random
from fractions import Fraction
from pathlib import Path

import pytest

from rules import load_definitions
from rules.evaluate.exact import OPERATIONS
from rules.testing import MemorySink, MemorySource, definitions_from_text, run
from rules.timeutil import DAY

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EXAMPLES = Path(__file__).parents[2] / "examples" / "segments"
PYTHON = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def exactly(op: str, a: str, b: str) -> float:
    return float(PYTHON[op](Fraction(a), Fraction(b)))


def test_the_shop_examples_loyal_customer_keeps_exactly_900_and_stays_in() -> None:
    assert 1100.10 - 200.10 < 900  # what float subtraction makes of it
    source, sink = MemorySource(), MemorySink()
    source.add("customer_created", "c-1", T0)
    source.add("order_placed", "c-1", T0 + DAY, total=1100.10)
    source.add("order_refunded", "c-1", T0 + 2 * DAY, amount=200.10)
    engine, _ = run(load_definitions(EXAMPLES), source, sink)
    assert exactly("-", "1100.10", "200.10") == 900
    assert sink.transitions("c-1", "loyalty") == [("enter", 1)]  # no exit: 900 is not below 900
    explained = engine.explain("c-1", T0 + 3 * DAY)
    assert explained is not None and explained["traits"]["lifetime_spend"] == 900  # type: ignore[index]


DEFINITIONS = """
traits:
  result: sum(order_placed.total) {op} sum(order_refunded.amount)
segments:
  at_least:
    when: result >= {threshold}
  at_most:
    when: result <= {threshold}
"""


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_cent_amounts_combine_exactly_in_conditions_and_explanations(tmp_path: Path, op: str) -> None:
    """For each pair, the exact result is the threshold: both `>=` and `<=` must hold
    (a float result one bit off makes one of them fail), and the explained trait is it."""
    chance = random.Random(op)
    for number in range(40):
        a, b = f"{chance.randrange(1, 500_000) / 100:.2f}", f"{chance.randrange(1, 50_000) / 100:.2f}"
        expected = exactly(op, a, b)
        definitions = definitions_from_text(DEFINITIONS.format(op=op, threshold=repr(expected)),
                                            tmp_path / f"{op}{number}")
        source, sink = MemorySource(), MemorySink()
        source.add("order_placed", "c-1", T0, total=float(a))
        source.add("order_refunded", "c-1", T0 + 1, amount=float(b))
        engine, _ = run(definitions, source, sink)
        assert engine.memberships("c-1")[0] == ["at_least", "at_most"], (a, op, b, expected)
        explained = engine.explain("c-1", T0 + 1)
        assert explained is not None and explained["traits"] == {"result": expected}, (a, op, b)


def test_whole_numbers_stay_integers_and_what_is_not_a_number_is_as_before() -> None:
    plus, minus, times, divided = (OPERATIONS[op] for op in "+-*/")
    assert plus(10**18, 1) == 10**18 + 1 and type(plus(10**18, 1)) is int
    assert divided(7, 2) == 3.5
    assert divided(0.3, 0.1) == 3.0 and 0.3 / 0.1 != 3.0
    assert times(1.1, 3) == 3.3 and 1.1 * 3 != 3.3
    assert divided(1e308, 1e-308) == float("inf")  # beyond the floats, as in float arithmetic
    assert minus(float("inf"), 1.5) == float("inf")
    with pytest.raises(ZeroDivisionError):
        divided(1.5, 0)
    with pytest.raises(TypeError):  # generated code then asks the closures, which answer null
        plus("12", 1.5)
