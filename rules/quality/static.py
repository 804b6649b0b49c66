"""Lint checks that need no events: each finds a definition that is valid but almost certainly wrong.

Every check reports only what the conditions prove (see `conditions`): a warning here
is never a guess about data.
"""
from __future__ import annotations

from collections.abc import Iterator

from rules.language import ast
from rules.language.model import Definitions, Origin, Segment
from rules.quality.conditions import ALWAYS, NEVER, bound, compares_with_null, domain, implies, inline_traits, verdict
from rules.quality.finding import Finding

CHECKS = ("never-holds", "always-holds", "null-compare", "unreachable-level", "hysteresis", "duplicate", "unused")


def static_findings(definitions: Definitions) -> list[Finding]:
    found = [*_conditions(definitions), *_null_comparisons(definitions), *_tiers(definitions),
             *_hysteresis(definitions), *_duplicates(definitions), *_unused(definitions)]
    return sorted(found, key=Finding.sort_key)


def _when(segment: Segment) -> Origin:
    return Origin(segment.origin.file, segment.when_line or segment.origin.line)


def _exit(segment: Segment) -> Origin:
    return Origin(segment.origin.file, segment.exit_line or segment.origin.line)


def _conditions(definitions: Definitions) -> Iterator[Finding]:
    for segment in definitions.segments.values():
        when = verdict(inline_traits(segment.when, definitions))
        if when.truth == NEVER:
            yield Finding("never-holds", f"segment {segment.name!r} can never have members: {when.reason}",
                          _when(segment), segment.name)
        elif when.truth == ALWAYS and segment.tier is None:
            yield Finding("always-holds", f"segment {segment.name!r} holds for every customer: {when.reason}",
                          _when(segment), segment.name)
        if segment.exit_when is None:
            continue
        leave = verdict(inline_traits(segment.exit_when, definitions))
        if leave.truth == NEVER:
            yield Finding("never-holds", f"exit_when of {segment.name!r} can never hold, so members never leave: "
                          f"{leave.reason}", _exit(segment), segment.name)
        elif leave.truth == ALWAYS:
            yield Finding("always-holds", f"exit_when of {segment.name!r} always holds, so members leave at their "
                          f"next evaluation: {leave.reason}", _exit(segment), segment.name)


def _walk(node: ast.Node) -> Iterator[ast.Node]:
    yield node
    for child in ast.children(node):
        yield from _walk(child)


def _null_comparisons(definitions: Definitions) -> Iterator[Finding]:
    """`x == null` anywhere (also in where= filters and traits) is null, never true."""
    places: list[tuple[ast.Node, Origin, str | None]] = [
        (trait.expr, trait.origin, None) for trait in definitions.traits.values()]
    for segment in definitions.segments.values():
        places.append((segment.when, _when(segment), segment.name))
        if segment.exit_when is not None:
            places.append((segment.exit_when, _exit(segment), segment.name))
    for expression, origin, owner in places:
        if verdict(expression).truth == NEVER and compares_with_null(expression):
            continue  # reported as never-holds
        for node in _walk(expression):
            if compares_with_null(node):
                yield Finding("null-compare", f"'{node.text}' is always null, never true: write "
                              f"'{_is_null(node)}'", Origin(origin.file, origin.line + node.line - 1), owner)


def _is_null(node: ast.Node) -> str:
    compare: ast.Compare = node  # type: ignore[assignment]
    other = compare.right if isinstance(compare.left, ast.Literal) and compare.left.kind == "null" else compare.left
    return f"{other.text} is {'not ' if compare.op == '!=' else ''}null"


def _tiers(definitions: Definitions) -> Iterator[Finding]:
    for tier, names in definitions.tiers.items():
        levels = [definitions.segments[name] for name in names if name in definitions.segments]
        conditions = [inline_traits(level.when, definitions) for level in levels]
        for later in range(1, len(levels)):
            for earlier in range(later):
                if implies(conditions[later], conditions[earlier]):
                    level, first = levels[later], levels[earlier]
                    yield Finding("unreachable-level", f"tier {tier!r}: level {level.name!r} can never be reached: "
                                  f"every customer it matches ('{level.when.text}') is taken by the earlier level "
                                  f"{first.name!r} ('{first.when.text}'); put stricter levels first",
                                  _when(level), level.name)
                    break


def _hysteresis(definitions: Definitions) -> Iterator[Finding]:
    """`exit_when` must only hold where `when` does not, or members flap in and out."""
    for segment in definitions.segments.values():
        if segment.exit_when is None:
            continue
        enter = bound(inline_traits(segment.when, definitions))
        leave = bound(inline_traits(segment.exit_when, definitions))
        if enter is None or leave is None or enter.operand != leave.operand:
            continue
        values = domain(enter.operand)
        both = enter.interval.intersect(leave.interval).intersect(values)
        if not both.empty:
            yield Finding("hysteresis", f"when '{segment.when.text}' and exit_when '{segment.exit_when.text}' of "
                          f"{segment.name!r} both hold for values {enter.describe(both)}: such a member leaves at "
                          f"one evaluation and enters again at the next; exit_when must hold only outside when "
                          f"(e.g. below the entry threshold)", _exit(segment), segment.name)
        elif enter.interval.complements(leave.interval, values):
            yield Finding("hysteresis", f"exit_when '{segment.exit_when.text}' of {segment.name!r} is just the "
                          f"opposite of when '{segment.when.text}', so it adds no hysteresis: leave it out, or "
                          f"leave a gap between the two thresholds", _exit(segment), segment.name)


def _duplicates(definitions: Definitions) -> Iterator[Finding]:
    first_with: dict[tuple[ast.Node, ast.Node | None], Segment] = {}
    for segment in definitions.segments.values():
        if segment.tier is not None:
            continue
        exit_when = inline_traits(segment.exit_when, definitions) if segment.exit_when is not None else None
        key = (inline_traits(segment.when, definitions), exit_when)
        first = first_with.setdefault(key, segment)
        if first is not segment:
            yield Finding("duplicate", f"segment {segment.name!r} has the same conditions as {first.name!r} "
                          f"({first.origin}): the two always have the same members", segment.origin, segment.name)


def _unused(definitions: Definitions) -> Iterator[Finding]:
    """A segment without actions that no `in_segment()` reads only shows in the change stream."""
    read: set[str] = set()
    expressions = [trait.expr for trait in definitions.traits.values()]
    for segment in definitions.segments.values():
        expressions += [segment.when] + ([segment.exit_when] if segment.exit_when is not None else [])
    for expression in expressions:
        for node in _walk(expression):
            if isinstance(node, ast.Call) and node.function == "in_segment" and node.args:
                read.add(str(getattr(node.args[0], "value", "")))
    for segment in definitions.segments.values():
        if segment.tier is None and not segment.on_enter and not segment.on_exit and segment.name not in read:
            yield Finding("unused", f"segment {segment.name!r} has no on_enter/on_exit actions and no in_segment() "
                          f"reads it: only readers of the changes topic see it", segment.origin, segment.name)
