"""Which actions a change runs: the segment's `on_enter` or `on_exit`, plus one rule.

A price list belongs to the membership that granted it. Tier levels and membership
segments usually declare pricing only in `on_enter` (see examples/segments/shop.yaml),
yet a customer who drops from platinum to gold must lose platinum's prices. So the
exit of a segment whose `on_enter` sets pricing also runs a pricing removal on that
destination, unless `on_exit` already has a pricing action for it.
"""
from __future__ import annotations

from rules.language.model import Action, Definitions, Origin, Segment
from sinks.changes import ChangeEvent

_IMPLICIT = Origin("(exit of a segment with pricing)", 0)


def segment_actions(segment: Segment, change: str) -> tuple[Action, ...]:
    if change == "enter":
        return segment.on_enter
    explicit = {action.destination for action in segment.on_exit if action.kind == "pricing"}
    implied = dict.fromkeys(
        action.destination for action in segment.on_enter
        if action.kind == "pricing" and action.destination not in explicit
    )
    return segment.on_exit + tuple(Action("pricing", name, {}, _IMPLICIT) for name in implied)


def actions_for(definitions: Definitions, change: ChangeEvent) -> tuple[Action, ...] | None:
    """The actions to run, `()` for a holdout change, None when the segment is unknown."""
    segment = definitions.segments.get(change.segment)
    if segment is None:
        return None
    if change.holdout:
        return ()
    return segment_actions(segment, change.change)
