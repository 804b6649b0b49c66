"""Raw message bytes -> validated `Event`, or `BadEvent` with a reason a person can act on."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from rules.timeutil import parse_timestamp

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_MAX_BYTES = 64 * 1024


class BadEvent(ValueError):
    """An input that cannot be used; the message is the dead-letter reason."""


@dataclass(slots=True)
class Event:
    event_id: str
    type: str
    ts: int  # epoch milliseconds
    customer_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The id the event is keyed by: the customer, else the anonymous visitor."""
        return self.customer_id or self.anonymous_id or ""


def _optional_id(data: dict[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadEvent(f"'{name}' must be a non-empty string")
    return value


def event_from_dict(data: object) -> Event:
    """Validate a decoded JSON value against SPEC section 2."""
    if not isinstance(data, dict):
        raise BadEvent(f"event must be a JSON object, got {type(data).__name__}")
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise BadEvent("missing or empty 'event_id' (must be a string)")
    kind = data.get("type")
    if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
        raise BadEvent(f"'type' must match [a-z][a-z0-9_]*, got {kind!r}")
    customer_id = _optional_id(data, "customer_id")
    anonymous_id = _optional_id(data, "anonymous_id")
    if customer_id is None and anonymous_id is None:
        raise BadEvent("needs 'customer_id' or 'anonymous_id'")
    if kind == "identify" and (customer_id is None or anonymous_id is None):
        raise BadEvent("'identify' needs both 'anonymous_id' and 'customer_id'")
    if "timestamp" not in data:
        raise BadEvent("missing 'timestamp'")
    try:
        ts = parse_timestamp(data["timestamp"])
    except ValueError as exc:
        raise BadEvent(str(exc)) from None
    properties = data.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise BadEvent("'properties' must be a JSON object")
    return Event(event_id, kind, ts, customer_id, anonymous_id, properties)


def parse_event(raw: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Decode and validate one message; raises BadEvent with the reason."""
    if len(raw) > max_bytes:
        raise BadEvent(f"payload of {len(raw)} bytes is above the limit of {max_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"not valid JSON: {exc}") from None
    return event_from_dict(data)
