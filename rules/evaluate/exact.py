"""Sums and arithmetic of JSON numbers, exact for the decimals the numbers were written as.

Floating-point addition is not associative: 0.3 + 0.2 + 0.1 is 0.6, while
0.1 + 0.2 + 0.3 is 0.6000000000000001. The worker adds a customer's orders in the
order they arrive and replay in event-time order, so with float running totals a
condition such as `sum(order_placed.total) > 0.6` could hold live and not in replay,
and an explanation would show a spend of 1600.7600000000004.

So totals are added in decimal. A total stays a plain number (an int while every
amount is whole, else a float), and each addition reads both sides as the shortest
decimal that gives them back (`repr`: 19.99 is "19.99", the amount the event carried),
adds those exactly and takes the float nearest the result. A decimal of at most 15
significant digits survives the round trip through a float unchanged, so while a
total has at most 15 (amounts in cents up to ten trillion) every addition is exact
and the order cannot matter. Beyond that each addition is rounded to the nearest
float, as plain float addition would be.

The operators of the definition language (`+ - * /`) work the same way, so that
`sum(order_placed.total) - sum(order_refunded.amount)` of an order of 1100.10 and a
refund of 200.10 is 900, as a person computes it, and not 899.9999999999999, which
is `< 900`.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from decimal import Context, Decimal
from fractions import Fraction

_EXACT = Context(prec=1000, traps=[])
"""Wide enough for the sum of any two floats to be exact; traps nothing, so infinity
minus infinity is NaN, as for floats."""


def _decimal(number: object) -> Decimal:
    return Decimal(repr(number)) if type(number) is float else Decimal(number)  # type: ignore[arg-type]


Operation = Callable[[object, object], object]


def _decimal_operation(plain: Operation, exact: Callable[[Decimal, Decimal], Decimal]) -> Operation:
    """`plain` for anything but two numbers with a float among them (ints stay ints,
    bools and text behave as in Python, and a TypeError still means "not numbers"),
    else `exact` on their decimals, rounded to the nearest float once."""

    def operation(a: object, b: object) -> object:
        kind_a, kind_b = type(a), type(b)
        if kind_a is int and kind_b is int:
            return plain(a, b)
        if ((kind_a is not float and kind_a is not int) or (kind_b is not float and kind_b is not int)
                or not a or not b or not math.isfinite(a) or not math.isfinite(b)):  # type: ignore[arg-type]
            return plain(a, b)  # a zero operand makes float arithmetic exact; inf and NaN have no decimal
        return float(exact(_decimal(a), _decimal(b)))

    return operation


def _quotient(a: Decimal, b: Decimal) -> Decimal:
    """Division is not exact in decimal either (1/3): the quotient is taken as a
    fraction and rounded to a float once; a quotient beyond the floats is infinite."""
    try:
        return Decimal(float(Fraction(a) / Fraction(b)))
    except OverflowError:
        return Decimal("Infinity") if (a < 0) == (b < 0) else Decimal("-Infinity")


add = _decimal_operation(operator.add, _EXACT.add)
"""total + number: the running totals of `sum` and `avg`, and the language's `+`."""
subtract = _decimal_operation(operator.sub, _EXACT.subtract)
"""The same for `-` (and a window's total as its oldest bucket leaves)."""
multiply = _decimal_operation(operator.mul, _EXACT.multiply)
divide = _decimal_operation(operator.truediv, _quotient)
OPERATIONS: dict[str, Operation] = {"+": add, "-": subtract, "*": multiply, "/": divide}
"""The definition language's arithmetic operators; raise TypeError for values that
are not numbers (as Python's do) and ZeroDivisionError for a division by zero."""


def add_all(total: int | float, numbers: Iterable[object]) -> int | float:
    """`total` plus every int and float of `numbers` (other values are passed over)."""
    for number in numbers:
        if type(number) is int or type(number) is float:
            total = add(total, number)  # type: ignore[arg-type]
    return total


def mean(total: int | float, count: int) -> float:
    """total / count, correctly rounded from the decimal total."""
    exact = _decimal(total)
    if not exact.is_finite():
        return float(exact) / count
    return float(Fraction(exact) / count)


def fraction(number: object) -> Fraction:
    """A number as the exact fraction of the decimal written (19.99 is 1999/100)."""
    return Fraction(repr(number)) if type(number) is float else Fraction(number)  # type: ignore[arg-type]


Slope = int | Fraction
"""How fast a value moves with the clock (1 for `since(t)`), exact: see `exact_factor`."""


def exact_factor(number: int | float, op: str) -> Slope:
    """What multiplying (`*`) or dividing (`/`) by `number` multiplies a line in time
    by, as an exact fraction of the decimal written (an int when whole). The flip
    search solves `slope * t + intercept OP bound` for t; with the float 1 / 1.5 the
    crossing of `since(t) / 1.5 > 2h` came out a millisecond early, where the
    condition, computed exactly, did not hold yet, and the flip was never made."""
    factor = fraction(number)
    if op == "/":
        factor = 1 / factor
    return int(factor) if factor.denominator == 1 else factor
