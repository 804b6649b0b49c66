"""What a compiled expression reads while it evaluates one customer at one instant."""
from __future__ import annotations


class Context:
    """Aggregate slots, profile, clock and current memberships of one customer.

    `cache` memoises trait values during one evaluation so a trait used by several
    segments is computed once.
    """

    __slots__ = ("slots", "profile", "now", "members", "cache")

    def __init__(self, slots: dict[str, object], profile: dict[str, object], now: int,
                 members: dict[str, bool]) -> None:
        self.slots = slots
        self.profile = profile
        self.now = now
        self.members = members
        self.cache: dict[str, object] = {}
