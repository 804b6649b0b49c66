"""Membership change events, exactly as the product contract (section 4) publishes them."""
from __future__ import annotations

from typing import NamedTuple

import orjson

from rules.timeutil import format_timestamp


class Change(NamedTuple):
    """Immutable; a named tuple because one is built per change on the hot path."""

    customer_id: str
    segment: str
    change: str  # "enter" | "exit"
    seq: int
    at: int  # epoch ms: the cause's event time, or the instant a time-based flip happened
    cause: str  # event id, or "timer"
    holdout: bool
    definition: str

    def to_dict(self) -> dict[str, object]:
        return {
            "customer_id": self.customer_id,
            "segment": self.segment,
            "change": self.change,
            "seq": self.seq,
            "at": format_timestamp(self.at),
            "cause": self.cause,
            "holdout": self.holdout,
            "definition": self.definition,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())
