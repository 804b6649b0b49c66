"""Event types the definitions count that are missing from the data, or stopped arriving.

A type that never occurs is usually a typo (`order_placd`) or a producer not yet
connected; one whose last event is long before the as-of instant means a feed stopped,
and every segment counting it is quietly going stale.
"""
from __future__ import annotations

from collections.abc import Mapping

from rules.language import ast
from rules.language.model import Definitions, Origin
from rules.quality.finding import Finding
from rules.timeutil import DAY, HOUR, format_timestamp

AGGREGATES = ast.AGGREGATES


def expressions(definitions: Definitions) -> list[tuple[str, ast.Node, Origin]]:
    """(trait or segment name, expression, line where it starts) of every condition."""
    places: list[tuple[str, ast.Node, Origin]] = [
        (f"trait {t.name!r}", t.expr, t.origin) for t in definitions.traits.values()]
    for segment in definitions.segments.values():
        places.append((f"segment {segment.name!r}", segment.when,
                       Origin(segment.origin.file, segment.when_line or segment.origin.line)))
        if segment.exit_when is not None:
            places.append((f"segment {segment.name!r}", segment.exit_when,
                           Origin(segment.origin.file, segment.exit_line or segment.origin.line)))
    return places


def event_types_used(definitions: Definitions) -> dict[str, list[tuple[str, Origin]]]:
    """Event type -> (trait or segment name, line of the aggregate) that counts it."""
    used: dict[str, list[tuple[str, Origin]]] = {}
    for owner, expression, origin in expressions(definitions):
        for node in _aggregates(expression):
            event = node.args[0].parts[0]  # type: ignore[attr-defined]
            users = used.setdefault(event, [])
            if owner not in (name for name, _ in users):
                users.append((owner, Origin(origin.file, origin.line + node.line - 1)))
    return used


def _aggregates(node: ast.Node) -> list[ast.Call]:
    if isinstance(node, ast.Call) and node.function in AGGREGATES and node.args and isinstance(node.args[0], ast.Name):
        return [node]
    return [found for child in ast.children(node) for found in _aggregates(child)]


def freshness_findings(definitions: Definitions, last_seen: Mapping[str, int], as_of: int,
                       stale_after: int, events_name: str) -> list[Finding]:
    found: list[Finding] = []
    for event, users in sorted(event_types_used(definitions).items()):
        owners = ", ".join(name for name, _ in users)
        origin = users[0][1]
        last = last_seen.get(event)
        if last is None:
            found.append(Finding("missing-events", f"no {event!r} events in {events_name} (counted by {owners}): "
                                 f"a misspelt event type, or a feed not connected", origin))
        elif as_of - last > stale_after:
            found.append(Finding("stale-events", f"the last {event!r} event is from {format_timestamp(last)}, "
                                 f"{_span(as_of - last)} before {format_timestamp(as_of)} (counted by "
                                 f"{owners}): has the feed stopped?", origin))
    return found


def _span(ms: int) -> str:
    return f"{ms / DAY:.1f} days" if ms >= DAY else f"{ms / HOUR:.1f} hours"
