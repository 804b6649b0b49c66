"""Comparisons and `in` of the definition language, for values typed only at run time.

Event properties and profile attributes can hold any JSON value, so a condition on
them meets what the validator cannot see. Python's own operators would answer for
them in ways no definition means:

- a path through a list (`items.category`, every item's category) is a list:
  `items.category == "hair"` compared the whole list with the text and never held,
  and `!=` always held. A comparison with several values holds when one of them
  satisfies it (`items.price > 100`: some item costs more than 100), and `!=` is the
  negation of `==` (`items.category != "hair"`: no item is hair care);
- `true == 1` holds in Python; here a bool equals only a bool, and ordering a bool
  against a number is unknown (null), as the validator would have refused it;
- two times written as RFC 3339 text compare as instants, not as text (a login at
  10:00+05:00 is before a signup at 06:00Z), and text against a number compares as
  the instant it writes, or is unknown if it writes none;
- `x in [..., null]` is null when `x` is not found, as in SQL (`x not in` too);
- `in` with text on its right is a substring test (`"hair" in category`).

Numbers compared with numbers never come here: the closures and the generated code
compare them directly, which is the same result.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

from rules.timeutil import timestamp_or_none

COMPARE: dict[str, Callable[[object, object], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def compare(op: str, a: object, b: object) -> bool | None:
    """`a op b`: true, false, or None for unknown (null, or values that have no order)."""
    if a is None or b is None:
        return None
    several_a, several_b = type(a) is list, type(b) is list
    if several_a != several_b:  # one side has several values: does one of them satisfy it?
        if op == "!=":
            found = compare("==", a, b)
            return None if found is None else not found
        if several_a:
            return any_of(compare(op, item, b) for item in a)  # type: ignore[union-attr]
        return any_of(compare(op, a, item) for item in b)  # type: ignore[union-attr]
    if (type(a) is bool) != (type(b) is bool):
        return (op == "!=") if op in ("==", "!=") else None
    if type(a) is str:
        if type(b) is str:
            a, b = _instants(a, b)
        elif type(b) is int or type(b) is float:  # a time kept as text (profiles) against an instant
            a = timestamp_or_none(a)
    elif type(b) is str and (type(a) is int or type(a) is float):
        b = timestamp_or_none(b)
    if a is None or b is None:  # text that is no time, against a number
        return None
    try:
        return COMPARE[op](a, b)
    except TypeError:  # no order between these values
        return None


def contains(needle: object, haystack: object) -> bool | None:
    """`needle in haystack`: true, false, or None for unknown."""
    if needle is None or haystack is None:
        return None
    if type(haystack) is str:
        return needle in haystack if type(needle) is str else None
    if type(needle) is list:  # several values: is one of them in there?
        return any_of(contains(item, haystack) for item in needle)
    if not isinstance(haystack, (list, tuple, set, frozenset)):
        return None
    if type(needle) is str:  # text equals only text: Python's own test is exact (and in C)
        found = needle in haystack
    else:
        found = strictly_in(needle, haystack)
    if found:
        return True
    return None if None in haystack else False


def strictly_in(value: object, items: Iterable[object]) -> bool:
    """Is `value` among `items`, a bool matching only a bool (`distinct()` keeps 1 and
    true apart with this)."""
    is_bool = type(value) is bool
    for item in items:
        if item == value and (type(item) is bool) == is_bool:
            return True
    return False


def any_of(results: Iterable[bool | None]) -> bool | None:
    """Three-valued OR of several results: true if one is true, else unknown if one is."""
    unknown = False
    for result in results:
        if result:
            return True
        if result is None:
            unknown = True
    return None if unknown else False


def _instants(a: str, b: str) -> tuple[object, object]:
    """Two RFC 3339 texts as instants; other text as it is."""
    if len(a) >= 10 and len(b) >= 10 and a[4] == b[4] == "-" and a[7] == b[7] == "-":
        first, second = timestamp_or_none(a), timestamp_or_none(b)
        if first is not None and second is not None:
            return first, second
    return a, b
