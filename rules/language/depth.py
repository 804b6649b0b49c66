"""How deep a condition is once every trait it names is written out in full.

Each expression is parsed on its own, and the parser refuses one nested too deeply.
But evaluation inlines traits into the conditions that use them, so a chain of
traits, each adding a few terms to the one before (`score2: score1 + ...`), can build
a condition far deeper than any single expression: deep enough to exhaust Python's
recursion while the engine is being built, long after `validate` said ok. This check
finds that depth without recursing itself, so it holds for any chain.
"""
from __future__ import annotations

from rules.language import ast
from rules.language.model import Definitions
from rules.language.source import Problem

MAX_INLINED_DEPTH = 200
"""Deepest condition accepted, counted in expression levels with traits inlined.
Building and running the closures takes two to three Python frames per level, and the
engine may run under a few hundred frames of its caller (the worker's event loop):
this keeps the whole well inside Python's default limit of 1,000. No condition written
by hand comes near it."""


def depth_problems(defs: Definitions) -> list[Problem]:
    """A problem for each trait, then each segment condition, deeper than the limit,
    unless a trait it names is too deep already (that one is reported)."""
    depths = _trait_depths(defs)
    problems: list[Problem] = []
    too_deep = {name for name, found in depths.items() if found > MAX_INLINED_DEPTH}
    for name in sorted(too_deep):
        trait = defs.traits[name]
        if not _names(trait.expr) & too_deep:  # the first of a chain to go over says where to cut
            problems.append(Problem(trait.origin.file, trait.origin.line, _message(f"trait {name!r}", depths[name])))
    for segment in defs.segments.values():
        for node, line in ((segment.when, segment.when_line), (segment.exit_when, segment.exit_line)):
            if node is None or _names(node) & too_deep:
                continue
            found = _depth(node, defs, depths)
            if found is not None and found > MAX_INLINED_DEPTH:
                problems.append(Problem(segment.origin.file, line, _message(f"segment {segment.name!r}", found)))
    return problems


def _message(what: str, found: int) -> str:
    return (f"{what} is too deep with its traits written out ({found} levels, at most {MAX_INLINED_DEPTH}): "
            "split it, or use fewer traits that each build on the one before")


def _trait_depths(defs: Definitions) -> dict[str, int]:
    """Inlined depth of every trait whose traits resolve (traits in a cycle, reported
    elsewhere, are left out)."""
    depths: dict[str, int] = {}
    pending = dict(defs.traits)
    while pending:
        resolved = {name: found for name, trait in pending.items()
                    if (found := _depth(trait.expr, defs, depths)) is not None}
        if not resolved:
            break
        depths.update(resolved)
        for name in resolved:
            del pending[name]
    return depths


def _depth(node: ast.Node, defs: Definitions, depths: dict[str, int]) -> int | None:
    """Levels of `node` with each named trait counting its own inlined depth; None while
    a trait it names has none yet."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        if isinstance(current, ast.Name) and len(current.parts) == 1 and current.parts[0] in defs.traits:
            found = depths.get(current.parts[0])
            if found is None:
                return None
            level += found
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.trait_operands(current))
    return deepest


def _names(node: ast.Node) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and len(current.parts) == 1:
            found.add(current.parts[0])
        stack.extend(ast.trait_operands(current))
    return found
