"""What can be known about a condition without data: always true, never true, ranges.

Only certain conclusions are drawn. Traits are written out in full first, so
`orders >= 1` and `count(order_placed) >= 1` are recognised as the same condition. A
comparison with a number or duration becomes a range of its other side; `count()` is
never negative and neither `count()` nor `sum()` is ever null, which is all that is
assumed about aggregates.
"""
from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass

from rules.evaluate.analysis import conjuncts
from rules.language import ast
from rules.language.model import Definitions
from rules.quality.intervals import Interval
from rules.timeutil import format_duration

AGGREGATES = ast.AGGREGATES
NEVER_NULL = {"count", "sum"}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}
ALWAYS, NEVER = "always", "never"
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def inline_traits(node: ast.Node, definitions: Definitions) -> ast.Node:
    """`node` with every trait name replaced by the trait's expression (recursively)."""
    if isinstance(node, ast.Name) and len(node.parts) == 1 and node.parts[0] in definitions.traits:
        return inline_traits(definitions.traits[node.parts[0]].expr, definitions)
    if isinstance(node, ast.Call) and node.function in AGGREGATES:
        return node  # names inside where= are event properties, not traits
    changes: dict[str, object] = {}
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        if isinstance(value, ast.Node):
            changes[item.name] = inline_traits(value, definitions)
        elif isinstance(value, tuple) and value and isinstance(value[0], ast.Node):
            changes[item.name] = tuple(inline_traits(v, definitions) for v in value)
        elif isinstance(value, tuple) and value and isinstance(value[0], tuple):
            changes[item.name] = tuple((k, inline_traits(v, definitions)) for k, v in value)
    return dataclasses.replace(node, **changes) if changes else node


@dataclass(frozen=True)
class Bound:
    """`operand` must lie in `interval` for the comparison to hold."""

    operand: ast.Node
    interval: Interval
    kind: str  # "number" | "duration"

    def describe(self, interval: Interval | None = None) -> str:
        show = (lambda v: format_duration(int(v))) if self.kind == "duration" else None
        return (interval or self.interval).describe(show)


def literal_number(node: ast.Node) -> tuple[float, str] | None:
    if isinstance(node, ast.Negate):
        inner = literal_number(node.operand)
        return (-inner[0], inner[1]) if inner else None
    if isinstance(node, ast.Literal) and node.kind in ("number", "duration"):
        return (float(node.value), node.kind)  # type: ignore[arg-type]
    return None


def bound(node: ast.Node) -> Bound | None:
    """`x > 5` or `5 < x` as a range of x; None for anything else."""
    if not isinstance(node, ast.Compare) or node.op not in FLIPPED:
        return None
    right, left = literal_number(node.right), literal_number(node.left)
    if right is not None and left is None:
        interval = Interval.of(node.op, right[0])
        return Bound(node.left, interval, right[1]) if interval else None
    if left is not None and right is None:
        interval = Interval.of(FLIPPED[node.op], left[0])
        return Bound(node.right, interval, left[1]) if interval else None
    return None


def domain(operand: ast.Node) -> Interval:
    """Values an operand can take at all: counts are whole numbers, never negative."""
    if isinstance(operand, ast.Call) and operand.function == "count":
        return Interval(low=0, low_open=False, integer=True)
    return Interval()


def never_null(operand: ast.Node) -> bool:
    return isinstance(operand, ast.Call) and operand.function in NEVER_NULL


def compares_with_null(node: ast.Node) -> bool:
    return isinstance(node, ast.Compare) and any(
        isinstance(side, ast.Literal) and side.kind == "null" for side in (node.left, node.right))


@dataclass(frozen=True)
class Verdict:
    """ALWAYS (true for every customer), NEVER (never true) or None (depends on data), and why."""

    truth: str | None
    reason: str = ""


UNKNOWN = Verdict(None)


def verdict(node: ast.Node) -> Verdict:
    """Whether a condition (traits already inlined) holds always, never, or it depends."""
    if isinstance(node, ast.Literal):
        if node.kind == "bool":
            return Verdict(ALWAYS if node.value else NEVER, f"it is the constant {str(node.value).lower()}")
        if node.kind == "null":
            return Verdict(NEVER, "it is null, and a null condition is false")
        return UNKNOWN
    if compares_with_null(node):
        return Verdict(NEVER, f"'{node.text}' compares with null, which is always null (write 'is null')")
    if isinstance(node, ast.IsNull) and never_null(node.operand):
        return Verdict(ALWAYS if node.negated else NEVER, f"{node.operand.text} is never null")  # type: ignore[attr-defined]
    if isinstance(node, ast.Not):
        inner = verdict(node.operand)  # (not of a never-true part may be null, not true: unknown)
        return Verdict(NEVER, f"'{node.text}' negates a condition that always holds ({inner.reason})") \
            if inner.truth == ALWAYS else UNKNOWN
    if isinstance(node, ast.Logical):
        return _and(node) if node.op == "and" else _or(node)
    if isinstance(node, ast.Compare) and literal_number(node.left) and literal_number(node.right):
        holds = _COMPARE[node.op](literal_number(node.left)[0], literal_number(node.right)[0])  # type: ignore[index]
        return Verdict(ALWAYS if holds else NEVER, f"'{node.text}' compares two constants")
    found = bound(node)
    if found is not None:
        possible = found.interval.intersect(domain(found.operand))
        if possible.empty:
            return Verdict(NEVER, f"'{node.text}' cannot hold: {found.operand.text} is never negative")
        if never_null(found.operand) and domain(found.operand).within(found.interval):
            return Verdict(ALWAYS, f"'{node.text}' holds for every value of {found.operand.text}")
    return UNKNOWN


def _and(node: ast.Logical) -> Verdict:
    parts = conjuncts(node)
    verdicts = [verdict(part) for part in parts]
    for found in verdicts:
        if found.truth == NEVER:
            return found
    if all(found.truth == ALWAYS for found in verdicts):
        return Verdict(ALWAYS, verdicts[0].reason)
    ranges: dict[ast.Node, tuple[Interval, list[str]]] = {}
    for part in parts:
        found = bound(part)
        if found is None:
            continue
        interval, texts = ranges.get(found.operand, (domain(found.operand), []))
        ranges[found.operand] = (interval.intersect(found.interval), texts + [part.text])
        if ranges[found.operand][0].empty:
            return Verdict(NEVER, f"{' and '.join(repr(t) for t in ranges[found.operand][1])} cannot all hold")
    return UNKNOWN


def _or(node: ast.Logical) -> Verdict:
    verdicts = [verdict(part) for part in node.operands]
    for found in verdicts:
        if found.truth == ALWAYS:
            return found
    if all(found.truth == NEVER for found in verdicts):
        return Verdict(NEVER, "; ".join(found.reason for found in verdicts))
    return UNKNOWN


def implies(stronger: ast.Node, weaker: ast.Node) -> bool:
    """True only when `stronger` holding certainly makes `weaker` hold (traits inlined)."""
    if stronger == weaker or verdict(weaker).truth == ALWAYS:
        return True
    have = conjuncts(stronger)
    ranges: dict[ast.Node, Interval] = {}
    for part in have:
        found = bound(part)
        if found is not None:
            ranges[found.operand] = ranges.get(found.operand, domain(found.operand)).intersect(found.interval)
    for need in conjuncts(weaker):
        if need in have or verdict(need).truth == ALWAYS:
            continue
        found = bound(need)
        if found is None or found.operand not in ranges or not ranges[found.operand].within(found.interval):
            return False
    return True
