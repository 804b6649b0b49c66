"""Event types the definitions count that are missing from the data, or stopped arriving.

A type that never occurs is usually a typo (`order_placd`) or a producer not yet
connected; one whose last event is long before the as-of instant means a feed stopped,
and every segment counting it is quietly going stale.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from rules.language import ast
from rules.language.model import Definitions, Origin
from rules.quality.finding import Finding
from rules.timeutil import DAY, HOUR, format_timestamp

AGGREGATES = ast.AGGREGATES
PROFILE_TYPES = ("customer_created", "customer_updated")
"""The events that set profile attributes: the feed every `profile.x` depends on."""


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


Users = list[tuple[str, Origin]]
"""(trait or segment name, line) of each place that reads something, each name once."""
K = TypeVar("K")


def readers(definitions: Definitions, places: Callable[[ast.Node], Iterable[tuple[K, ast.Node]]]) -> dict[K, Users]:
    """What `places` finds in each condition and trait (a key, and the node that reads
    it) -> who reads it, at the line of that node."""
    used: dict[K, Users] = {}
    for owner, expression, origin in expressions(definitions):
        for key, node in places(expression):
            users = used.setdefault(key, [])
            if owner not in (name for name, _ in users):
                users.append((owner, Origin(origin.file, origin.line + node.line - 1)))
    return used


def event_types_used(definitions: Definitions) -> dict[str, Users]:
    """Event type -> (trait or segment name, line of the aggregate) that counts it."""
    return readers(definitions, lambda expression: (
        (node.args[0].parts[0], node) for node in _aggregates(expression)))  # type: ignore[attr-defined]


def profile_attributes_read(definitions: Definitions) -> dict[str, Users]:
    """Each profile attribute read (`profile.x`) -> (trait or segment name, line)."""
    return readers(definitions, lambda expression: ((node.parts[1], node) for node in _profile_names(expression)))


def _profile_names(node: ast.Node) -> list[ast.Name]:
    if isinstance(node, ast.Name) and len(node.parts) > 1 and node.parts[0] == "profile":
        return [node]
    return [found for child in ast.trait_operands(node) for found in _profile_names(child)]


def _aggregates(node: ast.Node) -> list[ast.Call]:
    if isinstance(node, ast.Call) and node.function in AGGREGATES and node.args and isinstance(node.args[0], ast.Name):
        return [node]
    return [found for child in ast.children(node) for found in _aggregates(child)]


def freshness_findings(definitions: Definitions, last_seen: Mapping[str, int], first_seen: Mapping[str, int],
                       as_of: int, stale_after: int, events_name: str) -> list[Finding]:
    """`last_seen`: each type's latest event at or before `as_of`; `first_seen`: each
    type's first event in the whole file (to tell a typo from an as-of too early)."""
    found: list[Finding] = []
    feeds = [((event,), f"{event!r} event", f"{event!r} events", f"counted by {_owners(users)}", users[0][1])
             for event, users in sorted(event_types_used(definitions).items())]
    profile_read = profile_attributes_read(definitions)
    if profile_read:
        # Sign-ups that stop leave every since(profile.created_at) segment stale; updates
        # come too seldom in a small shop to tell a stopped feed, and may never come.
        users = [user for attribute in sorted(profile_read) for user in profile_read[attribute]]
        read_by = f"profile read by {_owners(users)}"
        if "customer_created" in first_seen:
            feeds.append((("customer_created",), "'customer_created' event", "'customer_created' events",
                          read_by, users[0][1]))
        elif "customer_updated" not in first_seen:
            feeds.append((PROFILE_TYPES, "profile event", "profile events (customer_created or customer_updated)",
                          read_by, users[0][1]))
    for types, one, many, read_by, origin in feeds:
        last = max((last_seen[t] for t in types if t in last_seen), default=None)
        first = min((first_seen[t] for t in types if t in first_seen), default=None)
        if last is None and first is not None:
            found.append(Finding("missing-events", f"no {many} at or before {format_timestamp(as_of)} ({read_by}): "
                                 f"the first is from {format_timestamp(first)}", origin))
        elif last is None:
            found.append(Finding("missing-events", f"no {many} in {events_name} ({read_by}): "
                                 f"{'a misspelt event type, or ' if len(types) == 1 else ''}a feed not connected",
                                 origin))
        elif as_of - last > stale_after:
            found.append(Finding("stale-events", f"the last {one} is from {format_timestamp(last)}, "
                                 f"{_span(as_of - last)} before {format_timestamp(as_of)} ({read_by}): "
                                 "has the feed stopped?", origin))
    return found


def outlying_time_findings(times: Sequence[int], after: int, events_name: str) -> list[Finding]:
    """Events dated well after all but a few (a producer with a wrong clock): lint's
    default as-of is the last event, and one event from 2099 would move the whole
    report there, every segment and every feed judged a lifetime later."""
    if len(times) < 1000:  # too few for "all but 0.1 %" to leave out even one
        return []
    bulk = times[(len(times) - 1) * 999 // 1000]  # 99.9 % of the events are at or before this
    late = len(times) - bisect.bisect_right(times, bulk + after)
    if not late:
        return []
    return [Finding("outlying-times", f"{late:,} of {len(times):,} events in {events_name} {'is' if late == 1 else 'are'} dated more than "
                    f"{_span(after)} after 99.9 % of the others, the last at {format_timestamp(times[-1])}: a wrong "
                    f"clock? The report is as of that last event; give --as-of to choose the instant")]


SECONDS_LOOK = 100_000_000_000
"""1973-03-03T09:46:40Z in epoch ms. Epoch seconds of any date since 1973 are below it
(2026 is 1.77 billion), so integer timestamps sent in seconds, read as the contract's
milliseconds, all land in the first weeks of 1970."""


def epoch_seconds_findings(times: Sequence[int], events_name: str) -> list[Finding]:
    """Events dated before 1973 (`times` sorted): epoch seconds where milliseconds are
    wanted, a common producer mistake that nothing else flags (the events are valid,
    and each customer simply lives in January 1970)."""
    early = bisect.bisect_left(times, SECONDS_LOOK)
    if not early:
        return []
    return [Finding("epoch-seconds", f"{early:,} of {len(times):,} events in {events_name} "
                    f"{'is' if early == 1 else 'are'} dated before {format_timestamp(SECONDS_LOOK)}, the first at "
                    f"{format_timestamp(times[0])}: epoch seconds? An integer timestamp is read as milliseconds "
                    f"(1767225600 is 2026-01-01 in seconds, {format_timestamp(1_767_225_600)} in milliseconds)")]


def _owners(users: Users) -> str:
    return ", ".join(dict.fromkeys(name for name, _ in users))


def _span(ms: int) -> str:
    return f"{ms / DAY:,.1f} days" if ms >= DAY else f"{ms / HOUR:.1f} hours"
