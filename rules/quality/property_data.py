"""Properties and profile attributes the definitions read that the data lacks, or
holds in a form the aggregates leave out.

`sum(order_placed.totl)` is valid (a property is only known at run time) and sums
nothing; a `total` sent as text ("24.99") is left out of `sum` like a missing one. The
evaluator must take both quietly (a bad property is no reason to drop an event), so
lint counts them in the events it replays: a segment built on them is the wrong size.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rules.evaluate.aggregates import NUMERIC, is_number, values_at
from rules.evaluate.events import Event
from rules.language import ast
from rules.language.model import Definitions
from rules.quality.finding import Finding
from rules.quality.freshness import Users, expressions, profile_attributes_read, readers

SAMPLED_KEYS = 1000
"""Events (or profiles) whose keys are gathered to suggest the name that was meant."""


@dataclass(frozen=True)
class Read:
    """One property path of one event type, as an aggregate or its `where=` reads it."""

    event: str
    path: tuple[str, ...]
    numeric: bool  # read by sum, avg, min or max, which leave out what is no number


def properties_read(definitions: Definitions) -> dict[Read, Users]:
    """Each property read -> (trait or segment name, line) that reads it; a path read
    both by a numeric aggregate and otherwise counts as numeric."""
    used = readers(definitions, lambda expression: (((read.event, read.path), node)
                                                    for node, read in _reads(expression)))
    numeric = {(read.event, read.path) for _, expression, _ in expressions(definitions)
               for _, read in _reads(expression) if read.numeric}
    return {Read(event, path, (event, path) in numeric): users for (event, path), users in used.items()}


def _reads(node: ast.Node) -> list[tuple[ast.Node, Read]]:
    if isinstance(node, ast.Call) and node.function in ast.AGGREGATES and node.args \
            and isinstance(node.args[0], ast.Name):
        event, path = node.args[0].parts[0], node.args[0].parts[1:]
        found = [(node, Read(event, path, node.function in NUMERIC))] if path else []
        for key, value in node.kwargs:
            if key == "where":
                found += [(name, Read(event, name.parts, False)) for name in _names(value)]
        return found
    return [found for child in ast.children(node) for found in _reads(child)]


def _names(node: ast.Node) -> list[ast.Name]:
    if isinstance(node, ast.Name):
        return [node]
    return [found for child in ast.children(node) for found in _names(child)]


def property_findings(definitions: Definitions, events: Iterable[Event], events_name: str) -> list[Finding]:
    """Paths no event of their type carries, and numeric paths holding other values."""
    reads = properties_read(definitions)
    by_type: dict[str, list[Read]] = {}
    for read in reads:
        by_type.setdefault(read.event, []).append(read)
    seen = {read: 0 for read in reads}  # events with a value there
    mistyped = {read: 0 for read in reads}  # events with a value a numeric aggregate leaves out
    example: dict[Read, object] = {}
    totals: dict[str, int] = {}
    samples: dict[str, list[Mapping[str, object]]] = {}
    for event in events:
        wanted = by_type.get(event.type)
        if wanted is None:
            continue
        totals[event.type] = totals.get(event.type, 0) + 1
        sample = samples.setdefault(event.type, [])
        if len(sample) < SAMPLED_KEYS:
            sample.append(event.properties)
        for read in wanted:
            values = values_at(event.properties, read.path)  # type: ignore[arg-type]
            if values:
                seen[read] += 1
                if read.numeric:
                    odd = [v for v in values if not is_number(v)]
                    if odd:
                        mistyped[read] += 1
                        example.setdefault(read, odd[0])
    found: list[Finding] = []
    for read, users in sorted(reads.items(), key=lambda item: (item[0].event, item[0].path)):
        total, owners, dotted = totals.get(read.event, 0), ", ".join(n for n, _ in users), ".".join(read.path)
        if total and not seen[read]:  # (no events of the type at all: `missing-events` says so)
            hint = _hint(read.path, samples[read.event])
            found.append(Finding("missing-properties", f"no {read.event!r} event in {events_name} has {dotted!r} "
                                 f"(read by {owners}){hint}", users[0][1]))
        elif mistyped[read]:
            found.append(Finding("mistyped-properties", f"{read.event}.{dotted} is no number in {mistyped[read]:,} "
                                 f"of {total:,} {read.event!r} events (such as {example[read]!r}), and sum, avg, min "
                                 f"and max leave those values out (read by {owners}): send numbers, not text",
                                 users[0][1]))
    return found


def profile_findings(definitions: Definitions, profiles: Iterable[Mapping[str, object]]) -> list[Finding]:
    """Profile attributes the definitions read that no customer's profile holds."""
    used = profile_attributes_read(definitions)
    held: set[str] = set()
    sample: list[Mapping[str, object]] = []
    for profile in profiles:
        held.update(profile)
        if len(sample) < SAMPLED_KEYS:
            sample.append(profile)
    if not held:  # no profile events at all: nothing to compare with
        return []
    return [Finding("missing-properties", f"no customer's profile has {name!r} (read by "
                    f"{', '.join(n for n, _ in users)}){_hint((name,), sample)}", users[0][1])
            for name, users in sorted(used.items()) if name not in held]


def _hint(path: tuple[str, ...], sample: list[Mapping[str, object]]) -> str:
    """The names found where the path first breaks, and the closest one."""
    for depth in range(len(path)):
        keys: set[str] = set()
        for properties in sample:
            reached = values_at(properties, path[:depth], leaves=False)  # type: ignore[arg-type]
            keys.update(str(key) for container in reached if isinstance(container, dict) for key in container)
        if path[depth] not in keys:
            if not keys:
                return ""
            close = difflib.get_close_matches(path[depth], sorted(keys), n=1)
            where = f"{'.'.join(path[:depth])} has" if depth else "they have"
            shown = ", ".join(sorted(keys)[:12]) + (", ..." if len(keys) > 12 else "")
            return f"; {where} {shown}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return ""

