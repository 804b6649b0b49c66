"""Next-flip searches compiled to Python source, for speed.

For a time-dependent segment, the engine needs the next instant at which its
conditions can change truth with no new event (`timing.next_flip_function` is the
reference, built from closures). This module writes that search out as straight-line
Python with the expression source of `codegen`: lines in time (`since(...)` and
friends) cross their bound in closed form, windowed counts drop as their buckets
expire, and parts of an `and` that time cannot change guard the rest. `flip_lines`
gives the statements, which evaluation plans (`plan.py`) inline; `compile_next_flip`
wraps them in a function of their own.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from rules.evaluate import windows
from rules.evaluate.codegen import UNHANDLED, Fallback, TooBig, _Source, compiled
from rules.evaluate.compile import Compiler
from rules.language import ast
from rules.timeutil import instant_or_none


def _orderings() -> set[Callable]:
    from rules.evaluate.compile import COMPARE

    return {COMPARE[op] for op in ("<", "<=", ">", ">=")}


_ORDERINGS = _orderings()


def window_cross(spec: object, slots: dict, now: int, limit: object, compare: Callable, flipped: bool) -> object:
    """Next bucket expiry at which `window OP limit` changes (shared by both backends)."""
    if limit is None:
        return None

    def holds(value: object) -> object:
        try:
            return compare(limit, value) if flipped else compare(value, limit)
        except TypeError:
            return None

    return windows.next_crossing(spec, slots, now, holds, compare in _ORDERINGS)  # type: ignore[arg-type]


NextFlipFast = Callable[[dict, dict, int, dict], "int | None"]


def compile_next_flip(nodes: list[ast.Node], compiler: Compiler) -> NextFlipFast | None:
    """Generated equivalent of `timing.next_flip_function`; None when a line has a
    slope that is not a compile-time constant or the code is too deep to compile (then
    the closure version is used)."""
    source = _Source(compiler)
    try:
        body = flip_lines(nodes, compiler, source)
    except TooBig:
        return None
    if not body:
        return None
    lines = ["def next_flip(slots, profile, now, seqs):", *("    " + line for line in body), "    return best"]
    text = "\n".join([lines[0], "  try:", *("  " + line for line in lines[1:]),
                      f"  except {UNHANDLED}:",
                      "    raise _Fallback from None", ""])
    code = compiled(text, "<segment flips>")
    if code is None:
        return None
    source.env["_Fallback"] = Fallback
    namespace: dict[str, object] = dict(source.env)
    exec(code, namespace)  # noqa: S102 - generated from a validated tree
    return namespace["next_flip"]  # type: ignore[return-value]


def flip_lines(nodes: list[ast.Node], compiler: Compiler, source: _Source) -> list[str] | None:
    """Statements (unindented) that leave in `best` the next instant after `now` at
    which one of `nodes` can change truth with no new event, or None. They read
    `slots`, `profile`, `now` and `seqs`, may raise TypeError, ZeroDivisionError or
    AttributeError (the caller then uses the closure version), and use `source`'s
    names. None when a line has a slope that is not a compile-time constant; an empty
    list when nothing can flip."""
    from rules.evaluate.compile import COMPARE
    from rules.evaluate.timing import LineFlip, WindowFlip, crossing_instant, flip_plan

    source.env.update({"_instant": instant_or_none, "_cross": crossing_instant, "_wcross": window_cross,
                       "_expiry": windows.next_expiry, "_cdrop": windows.count_drop,
                       "_ceil": math.ceil, "_floor": math.floor})
    lines = ["best = None"]
    for node in nodes:
        guard = _static_guard(node, compiler, source)
        block: list[str] = []
        for item in flip_plan([node], compiler):
            if isinstance(item, LineFlip):
                left, right = source.line(item.comparison.left), source.line(item.comparison.right)
                if left is None or right is None:
                    return None
                slope = left[0] - right[0]
                if slope == 0:
                    continue
                a, b = source.temp(), source.temp()
                compare = source.constant(COMPARE[item.comparison.op])
                block.append(f"if ({a} := {left[1]}) is not None and ({b} := {right[1]}) is not None:")
                unit = _unit_crossing(slope, item.comparison.op, a, b)
                if unit is not None:
                    block.append(f"    found = {unit}")
                    block.append("    if found <= now:")
                    block.append("        found = None")
                else:
                    written = repr(slope) if type(slope) is int else source.constant(slope)
                    block.append(f"    found = _cross({written}, {a} - {b}, now, {compare})")
            elif isinstance(item, WindowFlip) and (drop := _count_drop(item, compiler)) is not None:
                block.append("if True:")
                block.append(f"    found = _cdrop({drop})")
            elif isinstance(item, WindowFlip):
                spec = source.constant(compiler.aggregate_spec(item.total))
                compare = source.constant(COMPARE[item.op])
                block.append("if True:")
                block.append(f"    found = _wcross({spec}, slots, now, {source.value(item.bound)}, {compare}, {item.flipped!r})")
            else:
                block.append("if True:")
                block.append(f"    found = _expiry({source.constant(item.spec)}, slots, now)")
            block.append("    if found is not None and (best is None or found < best):")
            block.append("        best = found")
        if not block:
            continue
        if guard is not None:
            lines.append(f"if {guard}:")
            lines.extend("    " + line for line in block)
        else:
            lines.extend(block)
    return lines if len(lines) > 1 else []


def _unit_crossing(slope: float, op: str, a: str, b: str) -> str | None:
    """The instant `slope * t + (a - b) OP 0` changes truth, for slope ±1 (the clock,
    `since(...)`) and an ordering: the closed form of `timing.crossing_instant`, which
    answers every other case. It is the first t where the line reaches 0 (`<`, `>=`
    with slope 1) or passes it (`<=`, `>`), mirrored for slope -1."""
    if op not in ("<", "<=", ">", ">="):
        return None
    reaches = op in ("<", ">=")
    if slope == 1:
        return f"_ceil({b} - {a})" if reaches else f"_floor({b} - {a}) + 1"
    if slope == -1:
        return f"_floor({a} - {b}) + 1" if reaches else f"_ceil({a} - {b})"
    return None


_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _count_drop(item: object, compiler: Compiler) -> str | None:
    """Arguments of `windows.count_drop` for `count(..., within=D) OP number`, or
    None for any other window comparison (then `window_cross` answers)."""
    from rules.evaluate.timing import WindowFlip

    assert isinstance(item, WindowFlip)
    spec = compiler.aggregate_spec(item.total)
    bound = item.bound
    op = _MIRROR[item.op] if item.flipped and item.op in _MIRROR else item.op
    if spec.kind != "count" or op not in ("<", "<=", ">", ">=") or not (
            isinstance(bound, ast.Literal) and bound.kind == "number" and not isinstance(bound.value, bool)):
        return None
    return f"slots.get({spec.key!r}), now, {spec.within!r}, {float(bound.value)!r}, {op in ('>', '<=')!r}"  # type: ignore[arg-type]


def _static_guard(node: ast.Node, compiler: Compiler, source: _Source) -> str | None:
    """Source of the part of an `and` condition that time alone cannot change.

    While such a conjunct is false the whole condition is false and stays so until an
    event arrives (which re-evaluates anyway), so its flips need not be looked for:
    a customer who never ordered is not woken when their account turns 30 days old
    for `since(profile.created_at) >= 30d and orders >= 1`. Conjuncts that read the
    clock, a window or another segment are not static."""
    from rules.evaluate.analysis import conjuncts, dependencies

    parts = conjuncts(node)
    static = [part for part in parts if not (deps := dependencies(part, compiler)).timed and not deps.segments]
    if not static or len(static) == len(parts):
        return None
    return " and ".join(source.holds(operand) for operand in static)
