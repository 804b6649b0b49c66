"""Ranges of numbers (or durations) a comparison lets through, to reason about conditions.

`spend > 1000` is the open range (1000, +inf). Intersecting and comparing ranges tells
when two conditions cannot both hold, when one implies another, and when one is the
exact opposite of another, without evaluating anything.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = True
    high_open: bool = True
    integer: bool = False
    """Only whole numbers (a count): `> 2` and `< 3` then have nothing between them.
    Such a range is kept closed at whole-number ends (`> 2` is `>= 3`), so equal
    ranges compare equal and adjacent ones meet at consecutive numbers."""

    def whole(self) -> Interval:
        """The whole numbers of this range, as a closed range of them."""
        low, high = self.low, self.high
        if low != -math.inf:
            low = math.floor(low) + 1 if self.low_open and float(low).is_integer() else math.ceil(low)
        if high != math.inf:
            high = math.ceil(high) - 1 if self.high_open and float(high).is_integer() else math.floor(high)
        return Interval(low, high, low == -math.inf, high == math.inf, True)

    @staticmethod
    def of(op: str, bound: float) -> Interval | None:
        """The values `x` for which `x OP bound` holds; None for `!=` (not one range)."""
        return {
            ">": Interval(low=bound, low_open=True),
            ">=": Interval(low=bound, low_open=False),
            "<": Interval(high=bound, high_open=True),
            "<=": Interval(high=bound, high_open=False),
            "==": Interval(bound, bound, False, False),
        }.get(op)

    @property
    def empty(self) -> bool:
        if self.low > self.high:
            return True
        return self.low == self.high and (self.low_open or self.high_open)

    def intersect(self, other: Interval) -> Interval:
        low, low_open = max((self.low, self.low_open), (other.low, other.low_open))
        high, high_open = min((self.high, self.high_open), (other.high, other.high_open))
        joined = Interval(low, high, low_open, high_open)
        return joined.whole() if self.integer or other.integer else joined

    def within(self, other: Interval) -> bool:
        """Every value of self is in other (an empty self is within anything)."""
        return self.empty or self.intersect(other) == self

    def complements(self, other: Interval, domain: Interval) -> bool:
        """Within `domain`, the two ranges are disjoint and together cover it."""
        a, b = self.intersect(domain), other.intersect(domain)
        if a.empty or b.empty or not a.intersect(b).empty:
            return False
        first, second = sorted((a, b), key=lambda i: (i.low, i.low_open))
        if domain.integer:  # closed ranges of whole numbers meet at consecutive ones
            joined = first.high + 1 == second.low
        else:
            joined = first.high == second.low and first.high_open != second.low_open
        return joined and Interval(first.low, second.high, first.low_open, second.high_open, domain.integer) == domain

    def describe(self, show: Callable[[float], str] | None = None) -> str:
        """`> 1000 and < 1100`; `show` formats a bound (e.g. as a duration)."""
        show = show or _number
        if self.low == self.high:
            return f"= {show(self.low)}"
        parts = []
        if self.low != -math.inf:
            parts.append(f"{'>' if self.low_open else '>='} {show(self.low)}")
        if self.high != math.inf:
            parts.append(f"{'<' if self.high_open else '<='} {show(self.high)}")
        return " and ".join(parts) or "any value"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
