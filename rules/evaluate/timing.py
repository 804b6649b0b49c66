"""The next instant at which a segment's condition can change with no new event.

Between events a customer's aggregates are fixed, so a condition depends on time only
through `now`/`since(...)` (linear in the clock) and through windowed aggregates
(constant until a bucket leaves the window). Each comparison is evaluated as a line
`slope * now + intercept` on both sides; where the lines cross lies a possible flip,
and bucket expiries are the others. The engine wakes the customer at the earliest
candidate after now and re-evaluates; a candidate that changes nothing costs one
evaluation and produces no change.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rules.evaluate import aggregates, windows
from rules.evaluate.analysis import comparisons, dependencies
from rules.evaluate.compile import COMPARE, Compiler
from rules.evaluate.context import Context
from rules.evaluate.exact import Slope, exact_factor, fraction
from rules.language import ast
from rules.timeutil import instant_or_none

Line = tuple[Slope | float, Slope | float]  # (slope, intercept): value = slope * now + intercept
LineFn = Callable[[Context], Line | None]
NextFlip = Callable[[Context], int | None]


class _Lines:
    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler

    def line(self, node: ast.Node) -> LineFn:
        if not dependencies(node, self.compiler).clock:
            value = self.compiler.value(node)

            def constant(ctx: Context) -> Line | None:
                number = instant_or_none(value(ctx))
                return None if number is None else (0, number)

            return constant
        if isinstance(node, ast.Name):
            if node.parts == ("now",):
                return lambda ctx: (1, 0)
            return self.line(self.compiler.defs.traits[node.parts[0]].expr)
        if isinstance(node, ast.Call) and node.function == "since":
            moment = self.compiler.value(node.args[0])

            def since(ctx: Context) -> Line | None:
                start = instant_or_none(moment(ctx))
                return None if start is None else (1, -start)

            return since
        if isinstance(node, ast.Call) and node.function == "coalesce":
            options = [self.line(arg) for arg in node.args]

            def first(ctx: Context) -> Line | None:
                for option in options:
                    found = option(ctx)
                    if found is not None:
                        return found
                return None

            return first
        if isinstance(node, ast.Negate):
            inner = self.line(node.operand)

            def negate(ctx: Context) -> Line | None:
                found = inner(ctx)
                return None if found is None else (-found[0], -found[1])

            return negate
        if isinstance(node, ast.Arithmetic):
            return self._arithmetic(node)
        return lambda ctx: None  # not linear in time: validation rejects these

    def _arithmetic(self, node: ast.Arithmetic) -> LineFn:
        left, right, op = self.line(node.left), self.line(node.right), node.op

        def combine(ctx: Context) -> Line | None:
            a, b = left(ctx), right(ctx)
            if a is None or b is None:
                return None
            if op == "+":
                return (a[0] + b[0], a[1] + b[1])
            if op == "-":
                return (a[0] - b[0], a[1] - b[1])
            if op == "*":
                factor, line = (a[1], b) if a[0] == 0 else (b[1], a)
            elif b[0] != 0 or b[1] == 0:
                return None
            else:
                factor, line = b[1], a
            exactly = exact_factor(factor, op)  # see there: float slopes miss crossings
            return (line[0] * exactly, line[1] * exactly)

        return combine


def _crossing(left: LineFn, right: LineFn, op: str) -> Callable[[Context], int | None]:
    """First instant after now where `left OP right` changes truth, from the two lines."""
    compare = COMPARE[op]

    def crossing(ctx: Context) -> int | None:
        a, b = left(ctx), right(ctx)
        if a is None or b is None or a[0] == b[0]:
            return None
        return crossing_instant(a[0] - b[0], a[1] - b[1], ctx.now, compare)

    return crossing


def _windowed_total(node: ast.Node, compiler: Compiler) -> ast.Call | None:
    """The windowed count()/sum() call `node` stands for, directly or as a trait."""
    while isinstance(node, ast.Name) and len(node.parts) == 1 and node.parts[0] in compiler.defs.traits:
        node = compiler.defs.traits[node.parts[0]].expr
    if isinstance(node, ast.Call) and node.function in ("count", "sum") and "within" in dict(node.kwargs):
        return node
    return None


def _window_crossing(call: ast.Call, other: ast.Node, op: str, flipped: bool,
                     compiler: Compiler) -> Callable[[Context], int | None]:
    spec = compiler.aggregate_spec(call)
    bound, compare = compiler.value(other), COMPARE[op]

    def crossing(ctx: Context) -> int | None:
        from rules.evaluate.flipgen import window_cross

        return window_cross(spec, ctx.slots, ctx.now, bound(ctx), compare, flipped)  # type: ignore[return-value]

    return crossing


def _nested_window(node: ast.Node, total: ast.Call, compiler: Compiler) -> bool:
    """True when the same windowed aggregate is also used outside a plain comparison
    (e.g. in arithmetic), where only bucket expiries are safe candidates."""
    key = compiler.aggregate_spec(total).key
    uses = 0
    plain = 0
    for comparison in comparisons(node, compiler):
        assert isinstance(comparison, ast.Compare)
        for side in (comparison.left, comparison.right):
            found = _windowed_total(side, compiler)
            if found is not None and compiler.aggregate_spec(found).key == key:
                plain += 1
    uses = _count_uses(node, key, compiler, set())
    return uses != plain


def _count_uses(node: ast.Node, key: str, compiler: Compiler, seen: set[str]) -> int:
    if isinstance(node, ast.Name) and len(node.parts) == 1 and node.parts[0] in compiler.defs.traits:
        return _count_uses(compiler.defs.traits[node.parts[0]].expr, key, compiler, seen)
    if isinstance(node, ast.Call) and node.function not in ("since", "coalesce", "in_segment"):
        return 1 if compiler.aggregate_spec(node).key == key else 0
    return sum(_count_uses(child, key, compiler, seen) for child in ast.children(node))


@dataclass(frozen=True)
class LineFlip:
    """A comparison with `now`/`since()` on a side: flips where the two lines cross."""

    comparison: ast.Compare


@dataclass(frozen=True)
class WindowFlip:
    """`count/sum(..., within=D) OP bound`: flips at the bucket expiry that crosses the bound."""

    total: ast.Call
    bound: ast.Node
    op: str
    flipped: bool  # the window is on the right-hand side


@dataclass(frozen=True)
class ExpiryFlip:
    """Any other use of a windowed aggregate: every bucket expiry is a candidate."""

    spec: aggregates.AggregateSpec


FlipPlan = list[LineFlip | WindowFlip | ExpiryFlip]


def flip_plan(nodes: list[ast.Node], compiler: Compiler) -> FlipPlan:
    """Where a segment's conditions (`when`, `exit_when`) can change with no new event."""
    plan: FlipPlan = []
    for node in nodes:
        exact: set[str] = set()  # windowed totals whose flips are computed exactly
        for comparison in comparisons(node, compiler):
            assert isinstance(comparison, ast.Compare)
            deps = dependencies(comparison, compiler)
            left, right = _windowed_total(comparison.left, compiler), _windowed_total(comparison.right, compiler)
            if not deps.clock and (left is None) != (right is None):
                total, other = (left, comparison.right) if left is not None else (right, comparison.left)
                assert total is not None
                if not dependencies(other, compiler).timed and not _nested_window(node, total, compiler):
                    plan.append(WindowFlip(total, other, comparison.op, right is not None))
                    exact.add(compiler.aggregate_spec(total).key)
                    continue
            if deps.clock:
                plan.append(LineFlip(comparison))
        for key in sorted(dependencies(node, compiler).windowed - exact):
            plan.append(ExpiryFlip(compiler.specs[key]))
    return plan


def crossing_instant(slope: Slope | float, intercept: Slope | float, now: int, compare: Callable[[object, object], bool]) -> int | None:
    """First whole millisecond after `now` where `slope * t + intercept OP 0` changes truth."""
    if type(slope) is not int or type(intercept) is not int:  # solved exactly, as conditions compute
        slope, intercept = fraction(slope), fraction(intercept)
    root = -intercept / slope
    for candidate in (math.ceil(root), math.floor(root) + 1):
        if candidate > now and compare(slope * candidate + intercept, 0) != compare(
            slope * (candidate - 1) + intercept, 0
        ):
            return candidate
    return None


def next_flip_function(nodes: list[ast.Node], compiler: Compiler) -> NextFlip | None:
    """Compile `nodes` (a segment's conditions) into `f(ctx) -> next instant or None`."""
    lines = _Lines(compiler)
    finders: list[Callable[[Context], int | None]] = []
    for item in flip_plan(nodes, compiler):
        if isinstance(item, LineFlip):
            c = item.comparison
            finders.append(_crossing(lines.line(c.left), lines.line(c.right), c.op))
        elif isinstance(item, WindowFlip):
            finders.append(_window_crossing(item.total, item.bound, item.op, item.flipped, compiler))
        else:
            finders.append(lambda ctx, spec=item.spec: windows.next_expiry(spec, ctx.slots, ctx.now))  # type: ignore[misc]
    if not finders:
        return None

    def next_flip(ctx: Context) -> int | None:
        best: int | None = None
        for finder in finders:
            found = finder(ctx)
            if found is not None and (best is None or found < best):
                best = found
        return best

    return next_flip
