"""Change events as the sinks read them back from the changes topic.

The worker publishes `rules.Change.to_json()`; the sinks keep the decoded object
as it came (`raw`), because webhooks, CSV rows, templates and dead letters all hand
the change on unchanged, and pull out only the fields they decide on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class BadChange(ValueError):
    """A message on the changes topic that is not a change event."""


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    customer_id: str
    segment: str
    change: str  # "enter" | "exit"
    seq: int
    holdout: bool
    raw: dict[str, Any]

    @property
    def delivery_id(self) -> str:
        """`<customer>:<segment>:<seq>`: names this change everywhere (webhook header, dedupe)."""
        return f"{self.customer_id}:{self.segment}:{self.seq}"

    def body(self) -> bytes:
        return orjson.dumps(self.raw)


def parse_change(data: bytes | dict[str, Any]) -> ChangeEvent:
    """Decode and check the fields the sinks rely on; raise BadChange otherwise."""
    try:
        raw = orjson.loads(data) if isinstance(data, (bytes, bytearray, memoryview, str)) else data
    except orjson.JSONDecodeError as exc:
        raise BadChange(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadChange("not a JSON object")
    customer, segment, change, seq = raw.get("customer_id"), raw.get("segment"), raw.get("change"), raw.get("seq")
    if not isinstance(customer, str) or not customer:
        raise BadChange("customer_id missing")
    if not isinstance(segment, str) or not segment:
        raise BadChange("segment missing")
    if change not in ("enter", "exit"):
        raise BadChange(f"change must be enter or exit, got {change!r}")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadChange(f"seq must be a positive integer, got {seq!r}")
    return ChangeEvent(customer, segment, change, seq, bool(raw.get("holdout", False)), raw)
