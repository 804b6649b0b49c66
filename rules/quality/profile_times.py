"""Profile attributes read as times that customers' profiles hold in no readable form.

`since(profile.created_at)` is null for a customer whose `created_at` is `05/01/2024`
or `yesterday`: the customer silently never becomes `new_customer` nor `regular`. The
evaluator has to read such text as missing (a bad attribute is no reason to drop the
event); lint counts the customers concerned so the feed can be fixed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from rules.language import ast
from rules.language.model import Definitions
from rules.quality.finding import Finding
from rules.quality.freshness import Users, readers
from rules.timeutil import instant_or_none


def profile_times_used(definitions: Definitions) -> dict[str, Users]:
    """Profile attribute -> (trait or segment name, line) that reads it as a time with `since`."""
    return readers(definitions, lambda expression: ((node.parts[1], node) for node in _since_profile(expression)))


def _since_profile(node: ast.Node) -> list[ast.Name]:
    if isinstance(node, ast.Call) and node.function == "since" and node.args:
        argument = node.args[0]
        if isinstance(argument, ast.Name) and len(argument.parts) == 2 and argument.parts[0] == "profile":
            return [argument]
    return [found for child in ast.children(node) for found in _since_profile(child)]


def unreadable_time_findings(definitions: Definitions, profiles: Iterable[Mapping[str, object]]) -> list[Finding]:
    """One finding per attribute that some profiles hold but that is no time in them."""
    used = profile_times_used(definitions)
    if not used:
        return []
    unreadable = {name: 0 for name in used}
    example: dict[str, object] = {}
    customers = 0
    for profile in profiles:
        customers += 1
        for name in used:
            value = profile.get(name)
            if value is not None and instant_or_none(value) is None:  # what `since` cannot read
                unreadable[name] += 1
                example.setdefault(name, value)
    found: list[Finding] = []
    for name, count in sorted(unreadable.items()):
        if count:
            owners = ", ".join(owner for owner, _ in used[name])
            found.append(Finding(
                "unreadable-times",
                f"{count:,} of {customers:,} customers have a profile.{name} that is no time (such as "
                f"{example[name]!r}), so since(profile.{name}) is null for them (read by {owners}): send RFC 3339 "
                f"text with an offset, epoch milliseconds, or a date alone (YYYY-MM-DD)",
                used[name][0][1]))
    return found
